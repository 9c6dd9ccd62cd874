#!/usr/bin/python3
"""testssl.sh against the real switchyard's TLS listener: what a client can negotiate.

Each test makes a throwaway CA and server certificate with the openssl command, starts two
`switchyard demo-upstream`s and a switchyard with only a TLS listener in front of them, and
scans it with testssl.sh (Debian's package, offline: no DNS, nothing fetched), reading its JSON
findings. Asserted: no SSLv2, SSLv3, TLS 1.0 or 1.1; TLS 1.2 and 1.3 offered (only TLS 1.3 with
min_version "1.3"); no NULL, anonymous, export, LOW, 3DES/IDEA or obsolete CBC suites; AEAD
suites offered; and no finding of severity HIGH or CRITICAL. The certificate is made so that
testssl has nothing to say about it (trusted through --add-ca, valid for 200 days, a CRL
address that is never fetched), so every such finding is about the listener's settings.

Run by ctest (tests/CMakeLists.txt), one test case per ctest test, with SWITCHYARD_BINARY set.
By hand:

    SWITCHYARD_BINARY=build/dev/admin/switchyard /usr/bin/python3 tests/proxy/testssl_test.py -v
    SWITCHYARD_BINARY=... /usr/bin/python3 tests/proxy/testssl_test.py -v Testssl.test_ec_p256

Only the standard library. Every process listens on 127.0.0.1 at a port the kernel picked, and
every wait is a bounded poll on a condition.
"""

import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from processes import Process, binary, tool  # noqa: E402

# testssl's ids for the protocols and the cipher categories of --protocols and --std.
NOT_OFFERED_PROTOCOLS = ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]
WEAK_CIPHER_CATEGORIES = {
    "cipherlist_NULL": "NULL ciphers (no encryption)",
    "cipherlist_aNULL": "anonymous ciphers (no authentication)",
    "cipherlist_EXPORT": "export ciphers",
    "cipherlist_LOW": "LOW: 64-bit, DES, RC2, RC4",
    "cipherlist_3DES_IDEA": "3DES and IDEA",
    "cipherlist_AVERAGE": "obsolete CBC ciphers",
}
# The severities that fail the test, whatever the finding.
FAILING_SEVERITIES = {"HIGH", "CRITICAL"}


class Testssl(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="switchyard-testssl-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, args, name):
        p = Process(self.tmp, args, name)
        self.addCleanup(p.stop)
        return p

    def openssl(self, *args):
        r = subprocess.run([tool("/usr/bin/openssl", "openssl")] + list(args), cwd=self.tmp,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "openssl %s: %s" % (" ".join(args), r.stderr))

    def certificate(self, key_type):
        """A CA and a server certificate for 127.0.0.1 signed by it, keys of key_type (the
        openssl req -newkey argument and its -pkeyopt); returns (CA file, chain file, key
        file)."""
        newkey = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                  "rsa": ["-newkey", "rsa", "-pkeyopt", "rsa_keygen_bits:2048"]}[key_type]
        self.openssl("req", "-x509", *newkey, "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                     "-days", "200", "-subj", "/CN=switchyard testssl CA",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.openssl("req", "-new", *newkey, "-nodes", "-keyout", "key.pem", "-out",
                     "server.csr", "-subj", "/CN=localhost")
        with open(os.path.join(self.tmp, "server.ext"), "w") as f:
            # The CRL address is only there for testssl to see one: nothing fetches it.
            f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                    "basicConstraints = critical, CA:FALSE\n"
                    "keyUsage = critical, digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "crlDistributionPoints = URI:http://127.0.0.1/switchyard-test.crl\n")
        self.openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-set_serial", "0x%016x" % int.from_bytes(os.urandom(8), "big"),
                     "-days", "200", "-extfile", "server.ext", "-out", "server.pem")
        chain = os.path.join(self.tmp, "fullchain.pem")
        with open(chain, "w") as out:
            for name in ("server.pem", "ca.pem"):
                with open(os.path.join(self.tmp, name)) as f:
                    out.write(f.read())
        return (os.path.join(self.tmp, "ca.pem"), chain, os.path.join(self.tmp, "key.pem"))

    def demo_upstream(self, name):
        p = self.start([binary(), "demo-upstream", "--name", name, "--listen", "127.0.0.1:0"],
                       "demo-upstream-" + name)
        m = p.wait_for(r"demo-upstream %s listening on 127\.0\.0\.1:(\d+)" % re.escape(name))
        return int(m.group(1))

    def switchyard(self, chain, key, min_version):
        """A switchyard with a TLS listener only, on 127.0.0.1:0, in front of two upstreams;
        returns its TLS port."""
        blue = self.demo_upstream("blue")
        green = self.demo_upstream("green")
        path = os.path.join(self.tmp, "switchyard.yaml")
        with open(path, "w") as f:
            f.write("listen: off\n"
                    "workers: 1\n"
                    "admin: { listen: 127.0.0.1:0 }\n"
                    "tls: { listen: 127.0.0.1:0, cert: %s, key: %s, min_version: \"%s\" }\n"
                    "slots:\n"
                    "  blue:  { endpoints: [\"127.0.0.1:%d\"] }\n"
                    "  green: { endpoints: [\"127.0.0.1:%d\"] }\n"
                    "state_file: off\n" % (chain, key, min_version, blue, green))
        self.proxy = self.start([binary(), "-c", path], "switchyard")
        m = self.proxy.wait_for(r"listening on TLS 127\.0\.0\.1:(\d+) \(admin on")
        return int(m.group(1))

    def get(self, port, ca):
        """(status, TLS version, ALPN protocol) of GET / over TLS, verifying the certificate
        against ca and offering h2 before http/1.1."""
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2", "http/1.1"])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            return response.status, conn.sock.version(), conn.sock.selected_alpn_protocol()
        finally:
            conn.close()

    def testssl(self, port, ca, checks):
        """testssl's findings for 127.0.0.1:port, by id: {id: (severity, finding)}. Offline
        (no DNS lookup, nothing fetched) and non-interactive, through Debian's openssl."""
        exe = tool("/usr/bin/testssl", "testssl.sh")
        json_path = os.path.join(self.tmp, "testssl.json")
        started = time.monotonic()
        r = subprocess.run([exe, "--warnings", "batch", "--color", "0", "--nodns", "none",
                            "--openssl", "/usr/bin/openssl", "--add-ca", ca, "--sneaky",
                            "--jsonfile", json_path] + checks + ["127.0.0.1:%d" % port],
                           cwd=self.tmp, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=110)
        self.elapsed = time.monotonic() - started
        # testssl's exit status counts some findings; the JSON says what they were.
        self.assertTrue(os.path.exists(json_path),
                        "testssl wrote no JSON (exit status %d):\n%s%s" %
                        (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
        with open(json_path) as f:
            findings = json.load(f)
        by_id = {}
        for finding in findings:
            by_id[finding["id"]] = (finding["severity"], finding["finding"])
        self.output = r.stdout
        problems = [f for f in findings if f["severity"] == "FATAL" or f["id"] == "scanProblem"]
        self.assertEqual(problems, [], "testssl could not scan:\n" + r.stdout[-3000:])
        return by_id

    def summary(self, title, findings):
        lines = ["%s: testssl took %.0f s" % (title, self.elapsed)]
        for key in NOT_OFFERED_PROTOCOLS + ["TLS1_2", "TLS1_3"] + sorted(WEAK_CIPHER_CATEGORIES) + \
                ["cipherlist_STRONG"]:
            if key in findings:
                lines.append("  %-22s %s" % (key, findings[key][1]))
        others = sorted((sev, key, text) for key, (sev, text) in findings.items()
                        if sev not in ("OK", "INFO", "DEBUG"))
        for sev, key, text in others:
            lines.append("  %-8s %s: %s" % (sev, key, text))
        print("\n".join(lines), file=sys.stderr)

    def assert_offered(self, findings, key):
        self.assertIn(key, findings)
        self.assertTrue(findings[key][1].startswith("offered"), "%s: %s" % (key, findings[key]))

    def assert_not_offered(self, findings, key):
        self.assertIn(key, findings)
        self.assertEqual(findings[key][1], "not offered", "%s: %s" % (key, findings[key]))

    def scan(self, key_type, min_version, checks):
        ca, chain, key = self.certificate(key_type)
        port = self.switchyard(chain, key, min_version)
        status, version, alpn = self.get(port, ca)
        self.assertEqual(status, 200)
        self.assertEqual(version, "TLSv1.3")
        self.assertEqual(alpn, "http/1.1")
        findings = self.testssl(port, ca, checks)
        # The scan's malformed and refused handshakes left the listener serving.
        self.assertIsNone(self.proxy.proc.poll(), "switchyard exited during the scan:\n" +
                          self.proxy.output()[-3000:])
        self.assertEqual(self.get(port, ca)[0], 200)
        self.summary("%s certificate, min_version %s" % (key_type.upper(), min_version),
                     findings)
        return findings

    def assert_no_weakness(self, findings):
        for key in NOT_OFFERED_PROTOCOLS:
            self.assert_not_offered(findings, key)
        for key in WEAK_CIPHER_CATEGORIES:
            self.assert_not_offered(findings, key)
        self.assert_offered(findings, "cipherlist_STRONG")
        bad = ["%s %s: %s" % (sev, key, text) for key, (sev, text) in sorted(findings.items())
               if sev in FAILING_SEVERITIES]
        self.assertEqual(bad, [], "testssl's findings of severity HIGH or CRITICAL")

    def test_ec_p256(self):
        findings = self.scan("ec", "1.2", ["--protocols", "--std", "--server-defaults",
                                           "--vulnerable"])
        self.assert_no_weakness(findings)
        self.assert_offered(findings, "TLS1_2")
        self.assert_offered(findings, "TLS1_3")
        # No compression (CRIME), no client-initiated renegotiation, ALPN http/1.1.
        self.assertIn("not vulnerable", findings["CRIME_TLS"][1])
        self.assertIn("not vulnerable", findings["secure_client_renego"][1])
        self.assertIn("http/1.1", findings["ALPN"][1])

    def test_rsa_2048(self):
        findings = self.scan("rsa", "1.2", ["--protocols", "--std", "--robot"])
        self.assert_no_weakness(findings)
        self.assert_offered(findings, "TLS1_2")
        self.assert_offered(findings, "TLS1_3")
        # An RSA key, yet no suite with RSA key transport for ROBOT to attack.
        self.assertTrue(findings["ROBOT"][1].startswith("not vulnerable"), findings["ROBOT"])

    def test_min_version_1_3(self):
        findings = self.scan("ec", "1.3", ["--protocols", "--std"])
        self.assert_no_weakness(findings)
        self.assert_not_offered(findings, "TLS1_2")
        self.assert_offered(findings, "TLS1_3")


if __name__ == "__main__":
    unittest.main()
