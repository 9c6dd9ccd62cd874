#include "tests/support/test_pki.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>

namespace switchyard::test {
namespace {

namespace fs = std::filesystem;

struct pkey_free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
    void operator()(X509* p) const { X509_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

void check(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("test_pki: ") + what + " failed");
    }
}

pkey_ptr new_key() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EVP_EC_gen");
    return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
    X509_EXTENSION_free(ext);
}

// A certificate for `key`, named `common_name`, issued by `issuer` (itself when null); not signed
// yet, so that extensions can be added.
x509_ptr make_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer, long serial,
                   std::chrono::seconds not_before, std::chrono::seconds not_after) {
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before.count()));
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after.count()));
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    return cert;
}

void write_pem(const fs::path& path, X509* cert, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    check(f != nullptr, "fopen");
    const bool ok = cert ? PEM_write_X509(f, cert) == 1
                         : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    std::fclose(f);
    check(ok, "PEM_write");
}

bool is_ip(const std::string& name) {
    return name.find_first_not_of("0123456789.") == std::string::npos ||
           name.find(':') != name.npos;
}

}  // namespace

test_pki::test_pki() {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("switchyard-pki-" + std::to_string(rd()));
    fs::create_directories(dir_);
    pkey_ptr key = new_key();
    x509_ptr cert = make_cert(key.get(), "Switchyard test CA", nullptr, serial_++,
                              std::chrono::hours(-1), std::chrono::hours(24 * 30));
    add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");
    ca_cert_ = (dir_ / "ca.pem").string();
    write_pem(ca_cert_, cert.get(), nullptr);
    ca_key_ = key.release();
    ca_x509_ = cert.release();
}

test_pki::~test_pki() {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(ca_key_));
    X509_free(static_cast<X509*>(ca_x509_));
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
}

test_pki::issued test_pki::issue(const std::string& file, const std::vector<std::string>& names,
                                 std::chrono::seconds not_before, std::chrono::seconds not_after) {
    auto* ca_key = static_cast<EVP_PKEY*>(ca_key_);
    auto* ca = static_cast<X509*>(ca_x509_);
    pkey_ptr key = new_key();
    x509_ptr cert = make_cert(key.get(), names.empty() ? file : names.front(), ca, serial_++,
                              not_before, not_after);
    std::string san;
    for (const auto& n : names) {
        if (!san.empty()) {
            san.push_back(',');
        }
        san.append(is_ip(n) ? "IP:" : "DNS:").append(n);
    }
    if (!san.empty()) {
        add_extension(cert.get(), ca, NID_subject_alt_name, san);
    }
    add_extension(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), ca, NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), ca, NID_authority_key_identifier, "keyid");
    check(X509_sign(cert.get(), ca_key, EVP_sha256()) > 0, "X509_sign");
    issued out{(dir_ / (file + ".pem")).string(), (dir_ / (file + ".key")).string()};
    write_pem(out.cert, cert.get(), nullptr);
    write_pem(out.key, nullptr, key.get());
    return out;
}

}  // namespace switchyard::test
