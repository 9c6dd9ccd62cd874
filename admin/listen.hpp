#pragma once
// One listening socket for the control plane's servers (the admin API, demo-upstream).

#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"

namespace switchyard::admin {

// Opens `acceptor` on `at` (a name is looked up; its first address is taken), with
// SO_REUSEADDR, and listens. Throws boost::system::system_error.
void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const config::address& at);

}  // namespace switchyard::admin
