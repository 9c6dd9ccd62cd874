#include "admin/hold_api.hpp"

#include <string>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "admin/rollout_json.hpp"
#include "proxy/text.hpp"

namespace switchyard::admin {
namespace {

namespace json = boost::json;

admin_response json_answer(unsigned status, const json::value& body) {
    return {status, "application/json", json_line(body), {}};
}

admin_response error(unsigned status, std::string_view message) {
    return json_answer(status, error_json(message));
}

json::object hold_json(const analysis::split_state& split, const analysis::hold_board& board) {
    return {{"on", split.load_state().hold}, {"waiting", board.waiting()}};
}

json::object maintenance_json(const analysis::split_state& split,
                              const analysis::hold_board& board) {
    const bool on = split.load_state().maintenance;
    json::object out{{"on", on}};
    if (on) {
        out["message"] = *board.message();
    }
    return out;
}

// The message of a POST /maintenance: JSON {"message": "..."}, or the body as text, or the
// default when the body is empty. Sets `why` when the body is JSON without a string message.
std::optional<std::string> message_of(std::string_view body, std::string& why) {
    body = proxy::trim_whitespace(body);
    if (body.empty()) {
        return std::string(analysis::hold_board::default_message);
    }
    if (body.front() != '{') {
        return std::string(body);
    }
    boost::system::error_code ec;
    const json::value v = json::parse(body, ec);
    const json::string* message = nullptr;
    if (!ec && v.is_object()) {
        if (const auto* m = v.as_object().if_contains("message")) {
            message = m->if_string();
        }
    }
    if (message == nullptr) {
        why = "expected a text body or JSON {\"message\": \"...\"}";
        return std::nullopt;
    }
    if (message->empty()) {
        return std::string(analysis::hold_board::default_message);
    }
    return std::string(message->data(), message->size());
}

}  // namespace

admin_response hold_call(std::string_view method, std::string_view path, std::string_view body,
                         analysis::split_state& split, analysis::hold_board& board) {
    if (path == "/hold" || path == "/release") {
        if (method != "POST") {
            admin_response r = error(405, "method not allowed; use POST");
            r.allow = "POST";
            return r;
        }
        if (path == "/hold") {
            // Idempotent: a second POST /hold keeps the requests already waiting.
            if (!split.load_state().hold) {
                split.set_hold(true);
                spdlog::info("hold: new requests wait until POST /release");
            }
            return json_answer(200, {{"hold", hold_json(split, board)}});
        }
        if (!split.load_state().hold) {
            return error(409, "no hold to release: POST /hold first");
        }
        const std::uint32_t waiting = board.waiting();
        split.set_hold(false);
        board.release();
        spdlog::info("hold released: {} waiting requests sent on", waiting);
        json::object h = hold_json(split, board);
        h["released"] = waiting;
        return json_answer(200, {{"hold", std::move(h)}});
    }
    if (path == "/maintenance") {
        if (method == "POST") {
            std::string why;
            auto message = message_of(body, why);
            if (!message) {
                return error(400, why);
            }
            // The message first: a request that sees the flag reads the new message.
            board.set_message(std::move(*message));
            split.set_maintenance(true);
            spdlog::info("maintenance on: every request is answered 503");
            return json_answer(200, {{"maintenance", maintenance_json(split, board)}});
        }
        if (method == "DELETE") {
            // Idempotent: ending a maintenance that is not on changes nothing and says so.
            if (split.load_state().maintenance) {
                split.set_maintenance(false);
                spdlog::info("maintenance off");
            }
            return json_answer(200, {{"maintenance", maintenance_json(split, board)}});
        }
        admin_response r = error(405, "method not allowed; use POST, DELETE");
        r.allow = "POST, DELETE";
        return r;
    }
    return error(404, "no such endpoint: " + std::string(path));
}

void add_hold_status(json::object& status, const analysis::split_state& split,
                     const analysis::hold_board& board) {
    status["hold"] = hold_json(split, board);
    status["maintenance"] = maintenance_json(split, board);
}

}  // namespace switchyard::admin
