#include "admin/prometheus.hpp"

#include <charconv>
#include <cstdio>

namespace switchyard::admin {
namespace {

void append_number(std::string& out, std::uint64_t v) {
    std::array<char, 24> digits{};
    const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), v);
    out.append(digits.data(), r.ptr);
}

void append_seconds(std::string& out, double v) {
    // Shortest fixed-point form that reads back the same value: le="0.0005", not "5e-04".
    std::array<char, 64> digits{};
    const auto r =
        std::to_chars(digits.data(), digits.data() + digits.size(), v, std::chars_format::fixed);
    out.append(digits.data(), r.ptr);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// name{slot="blue"[,extra]} value
void sample(std::string& out, std::string_view name, std::string_view slot, std::string_view extra,
            std::uint64_t value) {
    out.append(name).append("{slot=\"").append(slot).append("\"");
    if (!extra.empty()) {
        out.append(",").append(extra);
    }
    out.append("} ");
    append_number(out, value);
    out.append("\n");
}

constexpr std::array<std::string_view, analysis::upstream_failure_kinds> failure_names{
    "connect", "timeout", "reset", "protocol"};

}  // namespace

void write_prometheus(const scrape_input& in, std::string& out) {
    header(out, "switchyard_http_requests_total", "counter",
           "Requests answered, by slot and status code (code 0: the client left unanswered).");
    for (std::size_t s = 0; s < 2; ++s) {
        const auto& t = in.totals[s];
        for (std::size_t i = 0; i < t.by_status.size(); ++i) {
            if (t.by_status[i] != 0) {
                std::string code = "code=\"";
                append_number(code, 100 + i);
                code.append("\"");
                sample(out, "switchyard_http_requests_total", in.slot_names[s], code,
                       t.by_status[i]);
            }
        }
        if (t.no_status != 0) {
            sample(out, "switchyard_http_requests_total", in.slot_names[s], "code=\"0\"",
                   t.no_status);
        }
    }

    header(out, "switchyard_http_request_duration_seconds", "histogram",
           "Time from the first byte of the request read to the last byte of the response "
           "written.");
    for (std::size_t s = 0; s < 2; ++s) {
        const auto& t = in.totals[s];
        std::array<std::uint64_t, duration_bounds.size()> cumulative{};
        std::uint64_t total = 0;
        const auto& latency = t.duration.buckets;
        for (std::size_t i = 0; i < latency.size(); ++i) {
            if (latency[i] == 0) {
                continue;
            }
            total += latency[i];
            const double mid = static_cast<double>(analysis::latency_buckets::lower(i) +
                                                   analysis::latency_buckets::upper(i) - 1) /
                               2e6;
            for (std::size_t b = 0; b < duration_bounds.size(); ++b) {
                if (mid <= duration_bounds[b]) {
                    cumulative[b] += latency[i];
                }
            }
        }
        for (std::size_t b = 0; b < duration_bounds.size(); ++b) {
            out.append("switchyard_http_request_duration_seconds_bucket{slot=\"")
                .append(in.slot_names[s])
                .append("\",le=\"");
            append_seconds(out, duration_bounds[b]);
            out.append("\"} ");
            append_number(out, cumulative[b]);
            out.append("\n");
        }
        sample(out, "switchyard_http_request_duration_seconds_bucket", in.slot_names[s],
               "le=\"+Inf\"", total);
        out.append("switchyard_http_request_duration_seconds_sum{slot=\"")
            .append(in.slot_names[s])
            .append("\"} ");
        append_seconds(out, static_cast<double>(t.duration.sum_micros) / 1e6);
        out.append("\n");
        sample(out, "switchyard_http_request_duration_seconds_count", in.slot_names[s], "", total);
    }

    header(out, "switchyard_upstream_errors_total", "counter",
           "Exchanges with an upstream that failed, by kind.");
    for (std::size_t s = 0; s < 2; ++s) {
        for (std::size_t k = 0; k < failure_names.size(); ++k) {
            std::string kind = "kind=\"";
            kind.append(failure_names[k]).append("\"");
            sample(out, "switchyard_upstream_errors_total", in.slot_names[s], kind,
                   in.totals[s].failures[k]);
        }
    }

    header(out, "switchyard_http_requests_in_flight", "gauge", "Requests being served.");
    for (std::size_t s = 0; s < 2; ++s) {
        sample(out, "switchyard_http_requests_in_flight", in.slot_names[s], "",
               in.totals[s].in_flight);
    }

    header(out, "switchyard_slot_weight", "gauge", "Percent of new requests sent to the slot.");
    for (std::size_t s = 0; s < 2; ++s) {
        sample(out, "switchyard_slot_weight", in.slot_names[s], "",
               in.split.weight(static_cast<analysis::slot_index>(s)));
    }

    header(out, "switchyard_active_slot", "gauge", "1 on the active slot.");
    for (std::size_t s = 0; s < 2; ++s) {
        sample(out, "switchyard_active_slot", in.slot_names[s], "", in.split.active == s ? 1 : 0);
    }
}

}  // namespace switchyard::admin
