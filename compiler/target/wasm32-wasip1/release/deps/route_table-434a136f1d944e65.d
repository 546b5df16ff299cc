/work/main/compiler/target/wasm32-wasip1/release/deps/route_table-434a136f1d944e65.d: main.rs ../src/route_table/mod.rs ../src/route_table/check.rs ../src/route_table/layout.rs ../src/route_table/page.rs ../src/route_table/read.rs ../src/route_table/render.rs

/work/main/compiler/target/wasm32-wasip1/release/deps/route_table-434a136f1d944e65.wasm: main.rs ../src/route_table/mod.rs ../src/route_table/check.rs ../src/route_table/layout.rs ../src/route_table/page.rs ../src/route_table/read.rs ../src/route_table/render.rs

main.rs:
../src/route_table/mod.rs:
../src/route_table/check.rs:
../src/route_table/layout.rs:
../src/route_table/page.rs:
../src/route_table/read.rs:
../src/route_table/render.rs:
