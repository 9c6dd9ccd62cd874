#pragma once
// A throwaway certificate authority for the TLS tests, made with OpenSSL's API in a temporary
// directory: an EC P-256 CA, and leaf certificates it signs for the names and validity a test
// asks for (expired ones included, which the openssl command cannot backdate).

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace switchyard::test {

class test_pki {
public:
    // A PEM certificate and its key, as files.
    struct issued {
        std::string cert;
        std::string key;
    };

    test_pki();   // makes the CA in a fresh temporary directory
    ~test_pki();  // removes the directory
    test_pki(const test_pki&) = delete;
    test_pki& operator=(const test_pki&) = delete;

    // The CA's certificate, a PEM file: what a client trusts.
    const std::string& ca() const noexcept { return ca_cert_; }
    const std::filesystem::path& dir() const noexcept { return dir_; }

    // A certificate for `names` (DNS names, or IP addresses such as "127.0.0.1", both put in the
    // subjectAltName), valid from now + not_before to now + not_after, signed by the CA, with a
    // fresh key. `file` names the two files ("<file>.pem", "<file>.key"). Throws on failure.
    issued issue(const std::string& file, const std::vector<std::string>& names,
                 std::chrono::seconds not_before = std::chrono::hours(-1),
                 std::chrono::seconds not_after = std::chrono::hours(24));

private:
    std::filesystem::path dir_;
    std::string ca_cert_;
    void* ca_key_ = nullptr;   // EVP_PKEY*
    void* ca_x509_ = nullptr;  // X509*
    long serial_ = 1;
};

}  // namespace switchyard::test
