#pragma once
// Typed configuration of Switchyard: the YAML of the README's "Configuration", parsed and
// validated in full.
//
// Every key has a default except `slots`. Parsing never throws to the caller: it returns every
// error it found, each naming the key path, the line and what was expected.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::config {

using duration = std::chrono::milliseconds;

// A `host:port` address to listen on or connect to. `host` may be a name, an IPv4 address or a
// bracketed IPv6 address (stored without brackets).
struct address {
    std::string host;
    std::uint16_t port = 0;

    std::string to_string() const;  // "host:port", IPv6 hosts in brackets
    friend bool operator==(const address&, const address&) = default;
};

struct admin_config {
    address listen{"127.0.0.1", 8081};
    std::string token;       // from `token`, or read from `token_file` at load time
    std::string token_file;  // empty when the token was given inline or not at all

    friend bool operator==(const admin_config&, const admin_config&) = default;
};

// TLS to a slot's endpoints (`slots.NAME.tls`). The certificate is verified unless `verify` is
// written out as false: against `ca` (a PEM file) or the system's store, and for `sni` or, when
// that is empty, the endpoint's host.
struct upstream_tls_config {
    bool verify = true;
    std::string ca;   // empty: the system's trust store
    std::string sni;  // empty: the endpoint's host, unless it is an IP address

    friend bool operator==(const upstream_tls_config&, const upstream_tls_config&) = default;
};

// Active health checks of a slot's endpoints (`slots.NAME.health_check`; README, "Health
// checks and ejection"): a GET of `path` to each endpoint every `interval`; 2xx passes. An
// endpoint leaves the rotation after `unhealthy` failures in a row and comes back after
// `healthy` passes in a row.
struct health_check_config {
    std::string path = "/health";
    duration interval{std::chrono::seconds(5)};
    duration timeout{std::chrono::seconds(1)};  // connect, TLS handshake and answer together
    std::uint32_t healthy = 2;
    std::uint32_t unhealthy = 3;

    friend bool operator==(const health_check_config&, const health_check_config&) = default;
};

// Passive ejection (`slots.NAME.passive`), as Envoy's outlier detection: that many 5xx answers
// or failed connects in a row, counted per endpoint across all workers, take the endpoint out of
// the rotation for `eject`. 0 turns a kind off. Without the key, 5xx eject nothing and a failed
// connect only skips its address for `upstream.fail_timeout`, in the worker that saw it.
struct passive_config {
    std::uint32_t consecutive_5xx = 5;
    std::uint32_t consecutive_connect_failures = 1;
    duration eject{std::chrono::seconds(30)};

    friend bool operator==(const passive_config&, const passive_config&) = default;
};

// One of the two slots; `name` is its key under `slots:` (blue and green by convention).
struct slot_config {
    std::string name;
    std::vector<address> endpoints;  // at least one
    std::optional<upstream_tls_config> tls;
    std::optional<health_check_config> health_check;  // none: no active checks, endpoints are up
    std::optional<passive_config> passive;            // none: no ejection (see passive_config)

    friend bool operator==(const slot_config&, const slot_config&) = default;
};

enum class tls_version { v1_2, v1_3 };

// The TLS listener (`tls:`), beside the plain one or, with `listen: off`, instead of it.
struct tls_config {
    address listen{"0.0.0.0", 8443};
    std::string cert;  // PEM: the certificate, then its chain
    std::string key;   // PEM
    tls_version min_version = tls_version::v1_2;

    friend bool operator==(const tls_config&, const tls_config&) = default;
};

enum class log_format { json, combined };

struct access_log_config {
    std::string to = "off";  // off | stdout | stderr | a file path
    log_format format = log_format::json;

    friend bool operator==(const access_log_config&, const access_log_config&) = default;
};

struct timeouts_config {
    duration connect{std::chrono::seconds(2)};
    duration request_header{std::chrono::seconds(10)};
    duration upstream_response{std::chrono::seconds(60)};
    duration idle{std::chrono::seconds(60)};
    duration drain{std::chrono::seconds(30)};
    duration tls_handshake{std::chrono::seconds(10)};
    // A tunnel (an upgraded connection) with no byte either way for this long is closed
    // (HAProxy's `timeout tunnel`).
    duration tunnel_idle{std::chrono::hours(1)};

    friend bool operator==(const timeouts_config&, const timeouts_config&) = default;
};

struct limits_config {
    std::uint64_t max_header_bytes = 64 * 1024;
    std::uint32_t max_headers = 100;
    std::uint64_t max_body_bytes = 0;  // 0 = unlimited, streamed
    std::uint32_t max_connections = 10000;

    friend bool operator==(const limits_config&, const limits_config&) = default;
};

// Protocols a client may switch to through the proxy with Upgrade (RFC 9110 §7.8): the request
// keeps its Upgrade, and a 101 from the upstream turns the connection into a tunnel. Protocol
// names in lower case; empty refuses every upgrade. h2c is never one of them.
struct upgrade_config {
    std::vector<std::string> allow{"websocket"};

    friend bool operator==(const upgrade_config&, const upgrade_config&) = default;
};

// Sticky sessions (`sticky:`): the first answer to a client that no route or pin took sets a
// cookie naming its slot, as an opaque value; the client stays on that slot while it is in
// rotation (README, "Sticky sessions").
struct sticky_config {
    std::string cookie = "sy_slot";       // the cookie's name: an RFC 6265 token
    duration ttl{std::chrono::hours(1)};  // its Max-Age

    friend bool operator==(const sticky_config&, const sticky_config&) = default;
};

// Keep-alive connections from each worker to each upstream endpoint (nginx `keepalive`,
// `keepalive_timeout` of an upstream block).
struct upstream_config {
    std::uint32_t max_idle = 32;  // idle connections kept per endpoint per worker
    duration idle_timeout{std::chrono::seconds(30)};  // closed after this long unused
    duration fail_timeout{std::chrono::seconds(5)};  // an address that refused is skipped this long
    duration resolve_interval{std::chrono::seconds(5)};  // names are looked up again this often

    friend bool operator==(const upstream_config&, const upstream_config&) = default;
};

// POST /hold (README, "Hold and maintenance"): new requests wait in memory until POST /release,
// at most `max_requests` of them across the process and each for at most `max_wait`; past
// either, a request is answered 503 with Retry-After. Reloadable: a request already waiting
// keeps the max_wait it began with.
struct hold_config {
    std::uint32_t max_requests = 1000;
    duration max_wait{std::chrono::seconds(30)};

    friend bool operator==(const hold_config&, const hold_config&) = default;
};

// What a check judges. Latencies are the upstream's own time (README, "Metrics").
enum class check_metric {
    error_rate,    // 5xx and upstream failures / all requests
    success_rate,  // 1 - error_rate
    latency_p50,
    latency_p90,
    latency_p95,
    latency_p99,
    latency_p999,
    // Mirrored answers whose status class differs from the primary's / mirrored answers; judged
    // only while a blue-green rollout judges the new slot on shadow traffic (README,
    // "Mirroring").
    mirror_mismatch_rate,
};

// "error_rate", "latency_p95", ...: the spelling of the configuration.
std::string_view metric_name(check_metric m) noexcept;
bool is_latency(check_metric m) noexcept;
// The quantile a latency metric reads (0.95 for latency_p95); 0 for the rates.
double quantile_of(check_metric m) noexcept;

enum class check_kind {
    max,                  // canary value <= limit
    min,                  // canary value >= limit
    max_ratio_to_stable,  // canary value <= limit * max(stable value, floor)
};

// One analysis check. Rates are fractions 0..1; latencies are seconds.
struct check_config {
    std::string name;  // the `check` label and the rollback reason; default: metric (+ "_ratio")
    check_metric metric = check_metric::error_rate;
    check_kind kind = check_kind::max;
    double limit = 0;  // max / min: the bound; max_ratio_to_stable: the ratio
    double floor = 0;  // max_ratio_to_stable: the least stable value compared against

    friend bool operator==(const check_config&, const check_config&) = default;
};

// The four checks used when `checks` is left out: error rate at most 5%, p95 at most 2 s, and
// both at most 2x and 1.5x the stable slot's (README, "Judgement").
std::vector<check_config> default_checks();

// `fast_rollback`: hard failures are checked several times a second, not once per interval.
struct fast_rollback_config {
    bool enabled = true;
    double error_rate = 0.5;
    std::uint32_t min_requests = 10;
    duration window{std::chrono::seconds(1)};

    friend bool operator==(const fast_rollback_config&, const fast_rollback_config&) = default;
};

// threshold: one judgement per interval against the checks. sequential: the ratio checks become
// anytime-valid tests evaluated every second (README, "Sequential judgement"); the absolute
// checks stay per interval as guard rails.
enum class analysis_method { threshold, sequential };
// interval: a step passes when its interval ends without a rollback. evidence: it also needs
// the sequential tests to show the canary within tolerance at confidence 1 - alpha.
enum class promote_rule { interval, evidence };

struct analysis_config {
    analysis_method method = analysis_method::sequential;
    double alpha = 0.01;  // sequential: the false-rollback probability over a whole rollout
    promote_rule promote = promote_rule::interval;
    // promote: evidence: how long a step may wait for evidence before the rollout pauses.
    duration max_step_duration{std::chrono::minutes(10)};
    duration interval{std::chrono::seconds(10)};
    std::uint32_t threshold = 3;
    std::uint32_t min_requests = 20;
    std::uint32_t inconclusive_limit = 5;
    fast_rollback_config fast_rollback;
    std::vector<check_config> checks = default_checks();

    friend bool operator==(const analysis_config&, const analysis_config&) = default;
};

enum class rollout_strategy { canary, blue_green };
std::string_view strategy_name(rollout_strategy s) noexcept;  // "canary", "blue-green"

struct health_config {
    std::string path = "/health";
    duration deadline{std::chrono::seconds(30)};

    friend bool operator==(const health_config&, const health_config&) = default;
};

// Blue-green only: requests the proxy sends to both slots before the switch, judged by the
// checks like an interval of traffic.
struct smoke_config {
    std::uint32_t requests = 0;  // 0 = no smoke run
    std::vector<std::string> paths{"/"};

    friend bool operator==(const smoke_config&, const smoke_config&) = default;
};

struct rollout_config {
    rollout_strategy strategy = rollout_strategy::canary;
    std::vector<std::uint32_t> steps{10, 25, 50, 75, 100};  // increasing, each 1..100, last 100
    bool approval = false;
    duration bake{std::chrono::minutes(5)};
    health_config health;
    smoke_config smoke;

    friend bool operator==(const rollout_config&, const rollout_config&) = default;
};

// `mirror`: shadow traffic. A copy of `percent` of the requests that go to the stable slot, with
// one of `methods` and a body of at most `max_body` bytes in hand with the head, is sent to the
// other slot; its answer is measured and discarded (README, "Mirroring").
struct mirror_config {
    std::uint32_t percent = 10;                       // 0..100; 0 mirrors nothing
    std::vector<std::string> methods{"GET", "HEAD"};  // as written: methods are case-sensitive
    std::uint64_t max_body = 64 * 1024;               // larger bodies are skipped (counted)
    // Copies in flight at once, for the whole process: each worker takes its share (rounded
    // up). A copy that finds its worker's share taken is dropped (counted).
    std::uint32_t queue = 1000;

    friend bool operator==(const mirror_config&, const mirror_config&) = default;
};

// An http:// URL, parsed once at load.
struct http_url {
    std::string text;    // as written
    address at;          // host and port (80 when absent)
    std::string target;  // path and query, "/" when absent

    friend bool operator==(const http_url&, const http_url&) = default;
};

// "http://host[:port][/path][?query]" (RFC 3986 §3); nullopt for anything else.
std::optional<http_url> parse_http_url(std::string_view text);

struct webhook_config {
    http_url url;
    duration timeout{std::chrono::seconds(10)};

    friend bool operator==(const webhook_config&, const webhook_config&) = default;
};

struct webhooks_config {
    std::vector<webhook_config> pre_rollout;
    std::vector<webhook_config> events;

    friend bool operator==(const webhooks_config&, const webhooks_config&) = default;
};

// How a route compares a header or cookie value (README, "Routes"). Header names are compared
// ignoring case, values exactly.
enum class value_match_kind {
    exact,    // the value equals `value`
    prefix,   // the value starts with `value`
    regex,    // RE2 `value` matches the whole value (linear time: no ReDoS)
    present,  // the header or cookie is there, whatever its value
    absent,   // `present: false`: it is not there
};

// One condition on a named header or cookie of a request.
struct value_match {
    std::string name;  // a header name as written (compared ignoring case), or a cookie name
    value_match_kind kind = value_match_kind::exact;
    std::string value;  // exact, prefix: the text; regex: the pattern; empty otherwise

    friend bool operator==(const value_match&, const value_match&) = default;
};

// A query parameter that must be in the request's target with exactly this value (both
// compared after percent-decoding, '+' as a space).
struct query_match {
    std::string name;
    std::string value;

    friend bool operator==(const query_match&, const query_match&) = default;
};

// What a request must carry for a route to take it: every condition given must hold; an empty
// match takes every request.
struct route_match {
    std::vector<value_match> headers;  // `header` (exact) and `headers` (any kind)
    std::vector<value_match> cookies;  // `cookie` (exact) and `cookies` (any kind)
    std::vector<query_match> query;
    std::string path_prefix;           // empty: any path
    std::vector<std::string> methods;  // empty: any method; compared exactly (RFC 9110 §9.1)

    friend bool operator==(const route_match&, const route_match&) = default;
};

enum class route_target {
    slot,    // the slot named in `slot`
    canary,  // the slot a running rollout moves toward; no match when none runs
    stable,  // the slot a running rollout moves away from, else the active slot
};

// One entry of `routes:`, evaluated in order before the weighted split; the first whose match
// holds takes the request (README, "Routes").
struct route_config {
    std::string name;  // unique; the `route` label of switchyard_route_requests_total
    route_match match;
    route_target to = route_target::slot;
    std::string slot;  // with route_target::slot: one of the two slot names

    friend bool operator==(const route_config&, const route_config&) = default;
};

// The most routes a configuration may hold: each has its own counter in every worker's shard.
inline constexpr std::size_t max_routes = 64;

// An address range of `preview.from`, IPv4 stored as IPv4-mapped IPv6 (::ffff:a.b.c.d, with
// 96 added to its prefix length) so that one comparison serves both families.
struct cidr {
    std::string text;  // as written
    std::array<std::uint8_t, 16> address{};
    std::uint8_t prefix = 128;  // leading bits compared, 0..128

    friend bool operator==(const cidr&, const cidr&) = default;
};

// The preview header (README, "Routes"): a request naming a slot in `header` goes to it when it
// carries the admin token in `token_header` or comes from one of `from`.
struct preview_config {
    std::string header = "X-Switchyard-Slot";
    std::string token_header = "X-Switchyard-Token";
    std::vector<cidr> from;

    friend bool operator==(const preview_config&, const preview_config&) = default;
};

// `listen_proxy_protocol`: the PROXY protocol header every client connection starts with
// (README, "PROXY protocol"), on the plain and the TLS listener alike; off when none is sent.
enum class proxy_protocol_version { off, v1, v2 };

// `workers: auto` is stored as 0 and resolved to the core count by the caller.
struct config {
    address listen{"0.0.0.0", 8080};
    bool plain_listener = true;  // false with `listen: off`, when only `tls` listens
    std::uint32_t workers = 0;
    admin_config admin;
    std::vector<slot_config> slots;                             // exactly two, in file order
    std::string active;                                         // defaults to the first slot's name
    std::string state_file = "/var/lib/switchyard/state.json";  // "off": no persistence
    access_log_config access_log;
    std::optional<tls_config> tls;
    // Restart-only: a connection accepted under one setting must not be read under another.
    proxy_protocol_version listen_proxy_protocol = proxy_protocol_version::off;
    timeouts_config timeouts;
    limits_config limits;
    upstream_config upstream;
    upgrade_config upgrade;
    std::optional<sticky_config> sticky;  // absent: no sticky sessions
    hold_config hold;
    analysis_config analysis;
    rollout_config rollout;
    webhooks_config webhooks;
    std::vector<route_config> routes;  // in order: the first match wins
    preview_config preview;
    std::optional<mirror_config> mirror;  // absent: no shadow traffic
};

// One problem found in a configuration. `path` is the key path ("slots.green.endpoints[0]");
// `line` is 1-based, 0 when the problem has no place in the file (a missing key of the root).
struct config_error {
    std::string path;
    int line = 0;
    std::string message;  // what was expected, e.g. "expected host:port, got \"backend:abc\""
};

struct load_result {
    std::optional<config> value;  // set only when `errors` is empty
    std::vector<config_error> errors;
};

// Parses and validates YAML text. Errors carry a key path and line, not the text's name: the
// caller names it in format_error(). Reads `admin.token_file` when it is set.
load_result parse_config(const std::string& text);

// Reads the file and parses it; an unreadable file is one error with line 0.
load_result load_config_file(const std::string& path);

// The `rollout:` keys of `text` (JSON or YAML: a map such as {"strategy": "blue-green"}) applied
// over `base`, validated as in a configuration file; errors name the key path under "rollout".
struct rollout_overrides_result {
    std::optional<rollout_config> value;  // set only when `errors` is empty
    std::vector<config_error> errors;
};
rollout_overrides_result parse_rollout_overrides(const std::string& text,
                                                 const rollout_config& base);

// "FILE:LINE: PATH: MESSAGE" (": LINE" left out when it is 0), one error per line.
std::string format_error(const std::string& source, const config_error& error);

// The whole of a file; nullopt with `why` set (strerror's words) when it cannot be read.
std::optional<std::string> read_whole_file(const std::string& path, std::string& why);

// True when the address is a loopback address ("127.x.y.z", "::1", "localhost").
bool is_loopback(const address& a);

}  // namespace switchyard::config
