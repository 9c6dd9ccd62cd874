#pragma once
// The small messages the hot-path benchmarks push through: a browser-like GET (11 fields,
// 512 bytes) and an nginx-like 200 for it (10 fields).

#include <string_view>

namespace switchyard::bench {

inline constexpr std::string_view small_request =
    "GET /static/js/app.3f9c2b.js?v=42 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://shop.example.com/cart\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1717490000;"
    " cart=7c4a8d09ca3762af61e59520943dc264\r\n"
    "Connection: keep-alive\r\n"
    "Sec-Fetch-Dest: script\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n";

inline constexpr std::string_view small_response =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Tue, 04 Jun 2024 10:15:30 GMT\r\n"
    "Content-Type: application/javascript\r\n"
    "Content-Length: 612\r\n"
    "Last-Modified: Mon, 03 Jun 2024 08:00:00 GMT\r\n"
    "Connection: keep-alive\r\n"
    "ETag: \"665d7880-264\"\r\n"
    "Cache-Control: max-age=3600\r\n"
    "Accept-Ranges: bytes\r\n"
    "\r\n";

// The client address and request id the proxy would pass along.
inline constexpr std::string_view client_ip = "203.0.113.7";
inline constexpr std::string_view request_id = "4bf92f3577b34da6a3ce929d0e0e4736";

}  // namespace switchyard::bench
