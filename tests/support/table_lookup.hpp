#pragma once
// A name service the test controls, in place of getaddrinfo: each name answers what the test last
// set for it, and a name never set does not exist.

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "proxy/resolver.hpp"

namespace switchyard::test {

class table_lookup final : public proxy::name_lookup {
public:
    // `host` resolves to `ips` ("127.0.0.2"); none: the name does not exist.
    void set(const std::string& host, const std::vector<std::string>& ips) {
        proxy::lookup_result r;
        for (const auto& ip : ips) {
            r.addresses.push_back(boost::asio::ip::make_address(ip));
        }
        if (ips.empty()) {
            r.error = "Name or service not known";
            r.not_found = true;
        }
        const std::lock_guard lock(mutex_);
        answers_[host] = std::move(r);
    }
    // Lookups of `host` fail without saying whether it exists (a DNS server timing out).
    void fail(const std::string& host) {
        const std::lock_guard lock(mutex_);
        answers_[host] = {{}, "Temporary failure in name resolution", false};
    }
    std::size_t lookups(const std::string& host) const {
        const std::lock_guard lock(mutex_);
        const auto it = counts_.find(host);
        return it == counts_.end() ? 0 : it->second;
    }

    proxy::lookup_result lookup(const std::string& host) override {
        const std::lock_guard lock(mutex_);
        ++counts_[host];
        const auto it = answers_.find(host);
        if (it == answers_.end()) {
            return {{}, "Name or service not known", true};
        }
        return it->second;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, proxy::lookup_result> answers_;
    std::map<std::string, std::size_t> counts_;
};

}  // namespace switchyard::test
