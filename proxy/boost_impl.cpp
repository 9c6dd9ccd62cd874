// The one translation unit that compiles Asio, Beast and Boost.JSON (separate compilation).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/json/src.hpp>
