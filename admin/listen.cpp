#include "admin/listen.hpp"

#include <string>

namespace switchyard::admin {

void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const config::address& at) {
    using tcp = boost::asio::ip::tcp;
    tcp::resolver resolver(acceptor.get_executor());
    const tcp::endpoint where =
        resolver.resolve(at.host, std::to_string(at.port)).begin()->endpoint();
    acceptor.open(where.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen();
}

}  // namespace switchyard::admin
