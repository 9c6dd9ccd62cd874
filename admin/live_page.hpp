#pragma once
// GET / on the admin listener (README, "Live page"): one self-contained page of HTML, CSS and
// JavaScript, built into the binary from admin/web/index.html, that polls GET /series.

#include <string>
#include <string_view>

namespace switchyard::admin {

struct live_page {
    std::string_view html;
    // Nothing but the page's own inline <script> and <style> (by their SHA-256) and requests to
    // the admin listener itself.
    std::string content_security_policy;
};

// Built once, on the first call.
const live_page& the_live_page();

// The CSP source of `text`: 'sha256-<base64 of its SHA-256>' (CSP Level 3, "hash-source").
std::string csp_hash(std::string_view text);

}  // namespace switchyard::admin
