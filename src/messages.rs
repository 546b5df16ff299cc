//! Every error the mirror answers with itself: its status, its OCI code and
//! its message, in one table.
//!
//! The planner decides which message a request gets ([`Msg`], one byte)
//! and what it names (a host, a repository); it never writes the text.
//! `build.rs` turns this table into `messages.js`, which the entry
//! (`src/edge.js`) carries and writes the OCI error body from:
//! `{"errors":[{"code":"CODE","message":"TEXT: SUBJECT","detail":null}]}`,
//! followed by the upstream's own errors when it relays an upstream's
//! answer. So the texts cost no bytes of the wasm, which never reads them
//! (native builds do: the tests and [`crate::oci::error_body`]).
//!
//! Codes are the distribution spec's, plus `UNAVAILABLE` (distribution's own
//! code for an upstream that cannot be reached). A message says what is wrong
//! and, where the client or the operator can do something, what.

/// OCI error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NameInvalid,
    NameUnknown,
    ManifestUnknown,
    BlobUnknown,
    DigestInvalid,
    Unsupported,
    Unauthorized,
    Denied,
    Unavailable,
    TooManyRequests,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unavailable => "UNAVAILABLE",
            Code::TooManyRequests => "TOOMANYREQUESTS",
        }
    }
}

macro_rules! messages {
    ($($(#[$doc:meta])* $name:ident = $status:literal $code:ident $text:literal,)*) => {
        /// A message of the table, by number (its position).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Msg {
            $($(#[$doc])* $name,)*
        }

        /// Every message, in [`Msg`] order: status, code, text.
        pub const MESSAGES: &[(u16, Code, &str)] = &[$(($status, Code::$code, $text),)*];
    };
}

messages! {
    UrlTooLong = 414 Unsupported "the request URL is longer than 8192 bytes",
    UrlBytes = 400 Unsupported "the request URL has spaces, control characters or raw non-ASCII bytes",
    UrlNotAbsolute = 400 Unsupported "the request URL is not absolute",
    Scheme = 400 Unsupported "the mirror serves http and https only",
    HostEmpty = 400 NameInvalid "the request has no Host",
    HostTooLong = 400 NameInvalid "the Host name is longer than 253 characters",
    HostChar = 400 NameInvalid "the Host name has characters a host name cannot have",
    HostLabel = 400 NameInvalid "the Host name has an empty label (\"..\" or a leading dot)",
    HostPort = 400 NameInvalid "the Host port is not a number from 1 to 65535",
    HostLiteral = 400 NameInvalid "the Host IPv6 literal is malformed",
    PathNotFound = 404 Unsupported "not a registry API path: the mirror serves /v2/<name>/manifests|blobs|tags|referrers/... and /token",
    /// A name that cannot exist is not found (404, as the distribution
    /// registry answers), with the spec's code for it.
    NameInvalid = 404 NameInvalid "invalid repository name: lower-case letters and digits, with '.', '_', '__' or '-' inside '/'-separated components",
    NameTooLong = 404 NameInvalid "invalid repository name: longer than 255 characters",
    ManifestUnknown = 404 ManifestUnknown "manifest unknown: the reference is neither a tag (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-') nor a digest",
    BlobUnknown = 404 BlobUnknown "blob unknown: blobs are named by their digest, algorithm:hex",
    DigestInvalid = 400 DigestInvalid "invalid digest: write it as algorithm:hex, for example sha256: followed by 64 lower-case hex digits",
    NsUnknown = 404 NameUnknown "no route of this mirror serves the registry named by ns",
    NameNoRoute = 404 NameUnknown "no route of this mirror serves this name on this host",
    HostNoRoute = 404 NameUnknown "no mirror is configured for this host",
    TokenRegistry = 404 NameUnknown "no route of this mirror has the registry name in this token request",
    ReadOnly = 405 Unsupported "this mirror is read-only; push to the upstream registry itself",
    /// With `Allow: GET, HEAD`.
    PullOnly = 405 Unsupported "this mirror only pulls: registry API paths take GET and HEAD",
    /// With `Allow: GET, POST`.
    TokenMethod = 405 Unsupported "the token endpoint takes GET or an OAuth2 form POST",
    /// The mirror's own challenge.
    AuthRequired = 401 Unauthorized "authentication required",
    Denied = 403 Denied "this mirror does not serve the repository",
    FormTooLarge = 400 Unsupported "the token form is larger than 16 KiB",
    SecretUnset = 503 Unavailable "the route's credentials secret is not set or not user:token; set it with wrangler secret put",
    NoTokenAuth = 404 Unavailable "the upstream registry does not use token authentication",
    /// A discovered realm the mirror will not call (`location::discovered_realm`).
    RealmRefused = 502 Unavailable "the upstream's challenge names a realm the mirror does not call: not https, with user info, or (with the route's credentials) on another domain; name the realm in routes.toml",
    ScopeEscape = 400 Unsupported "the token request's scope parameter is not valid percent-encoded ASCII",
    ScopeTooMany = 400 Unsupported "the token request has more than 64 scope parameters",
    ScopeMixed = 400 Unsupported "the token request asks for repositories of different upstream registries; ask for each separately",
    ChallengeEmpty = 502 Unavailable "the upstream answered 401 without a WWW-Authenticate challenge",
    ChallengeScheme = 502 Unavailable "the upstream's WWW-Authenticate challenge does not start with an auth scheme",
    ChallengeParam = 502 Unavailable "the upstream's WWW-Authenticate challenge has a malformed parameter",
    ChallengeQuote = 502 Unavailable "the upstream's WWW-Authenticate challenge has an unterminated quoted string",
    ChallengeRealm = 502 Unavailable "the upstream's Bearer challenge names no realm",
    LocationMissing = 502 Unavailable "the upstream redirected without a Location",
    LocationScheme = 502 Unavailable "the upstream redirected to a URL that is not http or https",
    LocationMalformed = 502 Unavailable "the upstream redirected to a malformed Location",
    TimedOut = 504 Unavailable "the upstream registry did not answer in time",
    RedirectLoop = 502 Unavailable "the upstream redirected too many times",
    Unreachable = 502 Unavailable "the upstream registry could not be reached, or redirected to a URL that cannot be fetched",
    TooLarge = 400 Unsupported "the request, or the upstream's answer to it, is larger than the mirror handles",
    /// In front of an upstream's 429 (its own status and body follow).
    PullLimit = 429 TooManyRequests "the registry's pull rate limit for this mirror (its address, or the account in the route's credentials secret) was reached; a credentials secret, of a paid account, lifts it (README)",
    /// In front of an upstream's 429 that is not its pull limit.
    AddressLimit = 429 TooManyRequests "the registry is limiting requests from this mirror's address; retry after Retry-After",
    /// In front of an upstream's 502-504 after its fallbacks had nothing.
    UpstreamDown = 503 Unavailable "the upstream registry is unavailable",
    /// `GET /v1/search` without a usable `q`.
    SearchQuery = 400 Unsupported "docker search needs q=TERM: at most 256 characters of percent-encoded ASCII",
    /// No `search` on the route the request picked.
    SearchNone = 404 NameUnknown "this mirror answers docker search only for routes with search = 'https://index.docker.io' in routes.toml; not for this registry",
    /// The entry handed the planner no table, or one of another format.
    TableUnusable = 500 Unavailable "the mirror's route table (table.bin) was not compiled for this worker; rebuild and deploy both together (npx wrangler deploy)",
    // The entry's own answers, before the planner sees the request
    // (src/admission.js): build.rs exports their numbers by name.
    /// A request without a valid key on a mirror with `access`: the same
    /// for every path, so it says nothing about the routes.
    KeyMissing = 404 NameUnknown "not found: this mirror is reached with its access key in the URL (HOST/KEY/...)",
    /// `/v2/` without a key: the challenge clients need before they ask
    /// for a name that carries one (docker and skopeo ping the bare host).
    KeyPing = 401 Unauthorized "authentication required: this mirror is reached with its access key in the URL (HOST/KEY/...)",
    /// The `access` secret is not set, or holds something that is not keys.
    KeysUnset = 503 Unavailable "the mirror's access keys secret is not set or not keys: comma-separated, each 16 or more letters, digits, '-' or '_'; set it with wrangler secret put",
    /// A `User-Agent` on the table's `deny_agents` list.
    AgentDenied = 403 Denied "this mirror does not serve this User-Agent",
    /// A client outside the table's `clients` list (its address and country
    /// follow).
    ClientDenied = 403 Denied "this mirror serves only the addresses and countries its clients list allows; not this client",
    /// Over the table's `rate_limit` binding (with Retry-After).
    MirrorLimit = 429 TooManyRequests "this mirror's own request limit for your address was reached (its rate_limit, not the registry's); retry after Retry-After",
}

/// The entry's own answers, exported by name to `messages.js` (build.rs).
pub const ENTRY: &[(&str, Msg)] = &[
    ("KEY_MISSING", Msg::KeyMissing),
    ("KEY_PING", Msg::KeyPing),
    ("KEYS_UNSET", Msg::KeysUnset),
    ("AGENT_DENIED", Msg::AgentDenied),
    ("CLIENT_DENIED", Msg::ClientDenied),
    ("MIRROR_LIMIT", Msg::MirrorLimit),
];

impl Msg {
    /// The message of this number, as [`Msg`]'s `as u8` gives it.
    pub fn from_number(n: usize) -> Option<Msg> {
        // SAFETY: `Msg` is a fieldless `repr(u8)` enum whose discriminants
        // are 0 to MESSAGES.len() - 1 in order (the macro writes both from
        // one list), and `n` is below that.
        (n < MESSAGES.len()).then(|| unsafe { core::mem::transmute::<u8, Msg>(n as u8) })
    }

    fn entry(self) -> (u16, Code, &'static str) {
        MESSAGES.get(self as usize).copied().unwrap_or((500, Code::Unavailable, ""))
    }

    /// The status of a local answer with this message.
    pub fn status(self) -> u16 {
        self.entry().0
    }

    pub fn code(self) -> Code {
        self.entry().1
    }

    pub fn text(self) -> &'static str {
        self.entry().2
    }
}
