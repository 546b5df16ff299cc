// Node module hooks that load a deploy build's modules as workerd does:
// `index_bg.wasm` as a compiled WebAssembly.Module, `table.bin` as an
// ArrayBuffer, `page.html` as text. Registered by tests/entry/fuzz_entry.mjs
// (module.register), so Node runs the entry exactly as it ships.
export async function load(url, context, next) {
  const kinds = { ".wasm": "new WebAssembly.Module(b)", ".bin": "b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)",
    ".html": "b.toString('utf8')" };
  const ext = Object.keys(kinds).find((e) => url.endsWith(e));
  if (ext === undefined) return next(url, context);
  return {
    format: "module",
    shortCircuit: true,
    source: `import { readFileSync } from "node:fs";\nconst b = readFileSync(new URL(${JSON.stringify(url)}));\n` +
      `export default ${kinds[ext]};\n`,
  };
}
