// The one translation unit that compiles Asio (its TLS layer too), Beast and Boost.JSON (separate
// compilation).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/json/src.hpp>
