#include "config/changes.hpp"

namespace switchyard::config {
namespace {

// The slots are matched by name and position: renaming or reordering them changes what the
// split, the state file and the metrics' labels mean, which only a restart can do.
bool same_slots(const config& a, const config& b) {
    if (a.slots.size() != b.slots.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.slots.size(); ++i) {
        if (a.slots[i].name != b.slots[i].name) {
            return false;
        }
    }
    return true;
}

}  // namespace

config_changes compare(const config& running, const config& next) {
    config_changes out;
    auto live = [&out](bool differs, std::string key) {
        if (differs) {
            out.changed.push_back(std::move(key));
        }
    };
    auto restart = [&out](bool differs, std::string key) {
        if (differs) {
            out.restart_required.push_back(std::move(key));
        }
    };

    // Bound or sized once at start: the listeners, the worker threads, the admin listener.
    restart(!(running.listen == next.listen) || running.plain_listener != next.plain_listener,
            "listen");
    // A TLS listener that comes, goes or moves; its certificates and settings apply live.
    restart(running.tls.has_value() != next.tls.has_value() ||
                (running.tls && !(running.tls->listen == next.tls->listen)),
            "tls.listen");
    restart(running.listen_proxy_protocol != next.listen_proxy_protocol, "listen_proxy_protocol");
    restart(running.workers != next.workers, "workers");
    restart(!(running.admin.listen == next.admin.listen), "admin.listen");
    // Read once at start: the state file holds the split and the rollout, and `active` is only
    // where traffic starts when there is none (PUT /active-slot switches it at any time).
    restart(running.state_file != next.state_file, "state_file");
    restart(running.active != next.active, "active");
    // The events webhooks' senders and queues are started once.
    restart(!(running.webhooks.events == next.webhooks.events), "webhooks.events");

    live(running.admin.token != next.admin.token ||
             running.admin.token_file != next.admin.token_file,
         "admin.token");
    if (same_slots(running, next)) {
        for (std::size_t i = 0; i < next.slots.size(); ++i) {
            live(running.slots[i].endpoints != next.slots[i].endpoints,
                 "slots." + next.slots[i].name + ".endpoints");
            live(running.slots[i].tls != next.slots[i].tls, "slots." + next.slots[i].name + ".tls");
            // The checks start again for the new settings; endpoints keep their state.
            live(running.slots[i].health_check != next.slots[i].health_check,
                 "slots." + next.slots[i].name + ".health_check");
            live(running.slots[i].passive != next.slots[i].passive,
                 "slots." + next.slots[i].name + ".passive");
        }
    } else {
        restart(true, "slots");
    }
    live(!(running.access_log == next.access_log), "access_log");
    live(!(running.timeouts == next.timeouts), "timeouts");
    live(!(running.limits == next.limits), "limits");
    live(!(running.upstream == next.upstream), "upstream");
    live(!(running.upgrade == next.upgrade), "upgrade");
    live(running.sticky != next.sticky, "sticky");
    live(!(running.hold == next.hold), "hold");
    // The certificate files are read again at every reload, changed or not (a renewal writes
    // new ones at the same paths); `tls` is named when its settings changed.
    live(running.tls && next.tls && !(*running.tls == *next.tls), "tls");
    live(!(running.analysis == next.analysis), "analysis");
    live(!(running.rollout == next.rollout), "rollout");
    live(!(running.webhooks.pre_rollout == next.webhooks.pre_rollout), "webhooks.pre_rollout");
    live(running.routes != next.routes, "routes");
    live(!(running.preview == next.preview), "preview");
    live(running.mirror != next.mirror, "mirror");
    return out;
}

config live_part(const config& running, const config& next) {
    config out = next;
    out.listen = running.listen;
    out.plain_listener = running.plain_listener;
    if (running.tls.has_value() != next.tls.has_value()) {
        out.tls = running.tls;
    } else if (out.tls) {
        out.tls->listen = running.tls->listen;
    }
    out.listen_proxy_protocol = running.listen_proxy_protocol;
    out.workers = running.workers;
    out.admin.listen = running.admin.listen;
    out.state_file = running.state_file;
    out.active = running.active;
    out.webhooks.events = running.webhooks.events;
    if (!same_slots(running, next)) {
        out.slots = running.slots;
    }
    return out;
}

}  // namespace switchyard::config
