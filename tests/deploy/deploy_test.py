#!/usr/bin/python3
"""Tests of deploy/: the compose stack's files, checked by the tools that read them, against a
real switchyard and a real Prometheus.

Run by ctest (tests/CMakeLists.txt), one test case per ctest test, with
SWITCHYARD_BINARY (the built executable) and SWITCHYARD_SOURCE_DIR (the repository root) set.
By hand:

    SWITCHYARD_BINARY=build/dev/admin/switchyard /usr/bin/python3 tests/deploy/deploy_test.py
    SWITCHYARD_BINARY=... /usr/bin/python3 tests/deploy/deploy_test.py Prometheus.test_dashboard_queries

Only the standard library. Every process listens on 127.0.0.1 at a port the kernel picked, and
every wait is a bounded poll on a condition.
"""

import http.client
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from processes import (LISTENING, Process, binary, eventually, tool,  # noqa: E402
                       write_two_slot_config)

SOURCE = os.environ.get("SWITCHYARD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(SOURCE, "deploy")
DASHBOARD = os.path.join(DEPLOY, "grafana", "dashboards", "switchyard.json")
DATASOURCES = os.path.join(DEPLOY, "grafana", "provisioning", "datasources")

# What the dashboard must show, by panel title.
PANELS = [
    "Request rate by slot",
    "Error rate by slot",
    "Latency p50, p95, p99 by slot",
    "Upstream time by slot",
    "Slot weights",
    "Active slot",
    "Rollout phase",
    "Rollbacks by reason",
]

# Libraries of the debian:12-slim base image that the binary may link.
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
# Runtimes of a -fsanitize build (the ASan+UBSan test run), never part of the image's build.
SANITIZER_PACKAGE = re.compile(r"^lib(asan|ubsan|lsan|tsan)\d+$")


def free_port():
    """A port nothing listens on, for a program that cannot be told port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port, method, path, body=None, timeout=5):
    """(status, body text) of one request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def metric_names(expr):
    """The metric families an expression reads: switchyard_* names, less histogram suffixes."""
    names = set()
    for name in re.findall(r"\bswitchyard_[a-z0-9_]+", expr):
        names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def dashboard_targets():
    """(panel title, target) for every target of every panel."""
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    return [(p["title"], t) for p in dashboard["panels"] for t in p.get("targets", [])]


class Traffic:
    """Steady load through the proxy from a few keep-alive clients, counted by answering slot
    (the demo upstream's X-Slot) and status."""

    def __init__(self, port, rate=150, clients=3):
        self.port = port
        self.interval = clients / rate
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.answers = {}  # (slot, status) -> count
        self.failures = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self):
        conn = None
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                key = (response.getheader("X-Slot", "?"), response.status)
                with self.lock:
                    self.answers[key] = self.answers.get(key, 0) + 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
            # Pacing: each client sends at rate / clients.
            next_at += self.interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))
        if conn is not None:
            conn.close()

    def count(self, slot):
        with self.lock:
            return sum(n for (s, _), n in self.answers.items() if s == slot)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=10)


class DeployTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="switchyard-deploy-test-")
        self.processes = []
        self.traffic = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for t in self.traffic:
            t.stop()
        for p in reversed(self.processes):
            p.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, args, name, env=None):
        """A child process, stopped when the test ends (after the traffic, last first)."""
        p = Process(self.tmp, args, name, env)
        self.processes.append(p)
        return p

    def start_traffic(self, port, **kwargs):
        t = Traffic(port, **kwargs)
        self.traffic.append(t)
        return t

    def demo_upstream(self, name, error_rate="0", latency="0ms"):
        """A `switchyard demo-upstream` on 127.0.0.1:0, its rate and latency given through the
        environment as in the compose file; returns its port."""
        env = dict(os.environ, DEMO_ERROR_RATE=error_rate, DEMO_LATENCY=latency)
        p = self.start([binary(), "demo-upstream", "--name", name, "--listen", "127.0.0.1:0"],
                       "demo-upstream-" + name, env)
        m = p.wait_for(r"demo-upstream %s listening on 127\.0\.0\.1:(\d+)" % re.escape(name))
        return int(m.group(1))

    def switchyard(self, blue_port, green_port, extra=""):
        """`switchyard -c` on 127.0.0.1:0 (admin too) in front of the two upstreams; returns
        (proxy port, admin port)."""
        path = os.path.join(self.tmp, "switchyard.yaml")
        write_two_slot_config(path, blue_port, green_port, extra)
        p = self.start([binary(), "-c", path], "switchyard")
        m = p.wait_for(LISTENING)
        return int(m.group(1)), int(m.group(2))

    def admin(self, port, method, path, body=None, expect=200):
        status, text = fetch(port, method, path, body)
        self.assertEqual(status, expect, "%s %s answered %d: %s" % (method, path, status, text))
        return json.loads(text) if text.startswith(("{", "[")) else text

    def phase(self, admin_port):
        return self.admin(admin_port, "GET", "/status")["rollout"]["phase"]


# a, b: the files pass the tools that read them.
class Configs(DeployTestCase):
    def test_compose_config(self):
        compose = tool("docker-compose", "docker-compose")
        r = subprocess.run([compose, "-f", os.path.join(DEPLOY, "docker-compose.yml"), "config",
                            "-q"], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, COMPOSE_PROJECT_NAME="switchyard-test"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_prometheus_config(self):
        promtool = tool("promtool", "prometheus")
        r = subprocess.run([promtool, "check", "config",
                            os.path.join(DEPLOY, "prometheus", "prometheus.yml")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_switchyard_config(self):
        # The token file named in the config must exist to be read: check a copy that points at
        # a token file here (the compose secret's path exists only in the container).
        with open(os.path.join(DEPLOY, "switchyard.yaml")) as f:
            text = f.read()
        self.assertIn("token_file: /run/secrets/switchyard-token", text)
        token = os.path.join(self.tmp, "switchyard-token")
        with open(token, "w") as f:
            f.write("a-test-token\n")
        copy = os.path.join(self.tmp, "switchyard.yaml")
        with open(copy, "w") as f:
            f.write(text.replace("/run/secrets/switchyard-token", token))
        r = subprocess.run([binary(), "check", "-c", copy], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(": ok", r.stdout)


# c: the dashboard's shape, and the metric names against a real scrape.
class Dashboard(DeployTestCase):
    def test_dashboard_panels(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        uids = set()
        for name in os.listdir(DATASOURCES):
            with open(os.path.join(DATASOURCES, name)) as f:
                uids.update(re.findall(r"^\s*uid:\s*(\S+)", f.read(), re.M))
        self.assertEqual(len(uids), 1, "one provisioned datasource uid, got %s" % uids)
        uid = uids.pop()
        self.assertGreaterEqual(dashboard.get("schemaVersion", 0), 36)
        titles = [p["title"] for p in dashboard["panels"]]
        self.assertEqual(sorted(titles), sorted(PANELS))
        for panel in dashboard["panels"]:
            targets = panel.get("targets", [])
            self.assertTrue(targets, panel["title"] + " has no target")
            for t in targets:
                self.assertTrue(t.get("expr", "").strip(), panel["title"] + " has an empty expr")
                self.assertEqual(t.get("datasource", {}).get("uid"), uid, panel["title"])
                self.assertTrue(metric_names(t["expr"]), panel["title"] + ": no metric")
                if "rate(" in t["expr"]:
                    self.assertIn("[$__rate_interval]", t["expr"], panel["title"])
            self.assertEqual(panel.get("datasource", {}).get("uid"), uid, panel["title"])

    def test_dashboard_metrics_exist(self):
        blue = self.demo_upstream("blue")
        green = self.demo_upstream("green")
        port, admin = self.switchyard(blue, green,
                                      "analysis: { interval: 1s, min_requests: 5 }\n"
                                      "rollout: { steps: [50, 100], bake: 0 }\n")
        # Both slots serve, a rollout starts and is rolled back by hand, so that every labelled
        # series (rollbacks included) exists.
        self.admin(admin, "PUT", "/weights", '{"green": 50}')
        for _ in range(10):
            status, _ = fetch(port, "GET", "/")
            self.assertEqual(status, 200)
        self.admin(admin, "PUT", "/weights", '{"green": 0}')
        self.admin(admin, "POST", "/rollout")
        self.admin(admin, "POST", "/rollback")
        eventually(lambda: self.phase(admin) == "rolled-back", 10, "the rollback")
        status, scrape = fetch(admin, "GET", "/metrics")
        self.assertEqual(status, 200)
        families = set(re.findall(r"^# TYPE (\S+) \S+$", scrape, re.M))
        for title, target in dashboard_targets():
            for name in metric_names(target["expr"]):
                self.assertIn(name, families, "%s: %s is not in /metrics" % (title, name))
        # The labels the queries group by are there too.
        self.assertRegex(scrape, r'switchyard_http_requests_total\{[^}]*slot="green"')
        self.assertRegex(scrape, r'switchyard_http_request_duration_seconds_bucket\{[^}]*le=')
        self.assertRegex(scrape, r'switchyard_rollbacks_total\{[^}]*reason="manual"')
        self.assertRegex(scrape, r'switchyard_rollout_phase\{[^}]*phase="rolled-back"')


# d: every dashboard query, through a real Prometheus scraping a real rollout.
class Prometheus(DeployTestCase):
    RATE_INTERVAL = "4s"

    def prometheus(self, admin_port):
        exe = tool("/usr/bin/prometheus", "prometheus")
        port = free_port()
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
                    "scrape_configs:\n"
                    "  - job_name: switchyard\n"
                    "    metrics_path: /metrics\n"
                    "    static_configs: [ { targets: [\"127.0.0.1:%d\"] } ]\n" % admin_port)
        self.start([exe, "--config.file=" + config,
                    "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
                    "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                   "prometheus")
        self.prom_port = port

        def ready():
            try:
                return fetch(port, "GET", "/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        eventually(ready, 30, "Prometheus to be ready")

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        return self._api("/api/v1/query", params)

    def query_range(self, expr, start, end):
        return self._api("/api/v1/query_range",
                         {"query": expr, "start": "%.3f" % start, "end": "%.3f" % end,
                          "step": "1"})

    def _api(self, path, params):
        status, text = fetch(self.prom_port, "GET", path + "?" + urllib.parse.urlencode(params))
        self.assertEqual(status, 200, "%s %s: %s" % (path, params, text))
        body = json.loads(text)
        self.assertEqual(body["status"], "success", text)
        return body["data"]["result"]

    def test_dashboard_queries(self):
        started = time.time()
        blue = self.demo_upstream("blue", error_rate="0")
        green = self.demo_upstream("green", error_rate="10%")
        port, admin = self.switchyard(
            blue, green,
            "analysis:\n"
            "  interval: 1s\n"
            "  threshold: 1\n"
            "  min_requests: 5\n"
            "rollout: { steps: [50, 100], bake: 0 }\n")
        self.prometheus(admin)
        eventually(lambda: self.query('up{job="switchyard"} == 1'), 15,
                   "Prometheus's first scrape of switchyard")
        # Half the traffic to green by hand, long enough for several rate windows.
        self.admin(admin, "PUT", "/weights", '{"green": 50}')
        traffic = self.start_traffic(port, rate=150, clients=3)
        eventually(lambda: traffic.count("green") >= 550, 30, "550 answers from green")
        self.admin(admin, "PUT", "/weights", '{"green": 0}')
        # A rollout of green, whose 10% errors break the 5% error_rate check.
        self.admin(admin, "POST", "/rollout")
        eventually(lambda: self.phase(admin) in ("rolled-back", "succeeded", "aborted"), 20,
                   "the rollout to end")
        self.assertEqual(self.phase(admin), "rolled-back")
        traffic.stop()
        self.assertEqual(traffic.failures, 0)
        eventually(lambda: self.query('switchyard_rollout_phase{phase="rolled-back"} == 1'), 10,
                   "a scrape after the rollback")
        # Steps fall every second from the start: reach one past that scrape.
        ended = time.time() + 1

        results = {}
        for title, target in dashboard_targets():
            expr = target["expr"].replace("$__rate_interval", self.RATE_INTERVAL)
            series = self.query_range(expr, started, ended)
            self.assertTrue(series, "%s: %s returned no data" % (title, expr))
            results.setdefault(title, []).append((expr, series))

        def values(series):
            return [float(v) for _, v in series["values"] if not math.isnan(float(v))]

        def by_label(series, label):
            return {s["metric"].get(label): values(s) for s in series}

        for expr, series in results["Request rate by slot"]:
            slots = by_label(series, "slot")
            self.assertEqual(set(slots), {"blue", "green"}, expr)
            self.assertGreater(max(slots["blue"]), 10, expr)
            self.assertGreater(max(slots["green"]), 10, expr)

        for expr, series in results["Error rate by slot"]:
            slots = by_label(series, "slot")
            self.assertEqual(set(slots), {"blue", "green"}, expr)
            self.assertTrue(any(abs(v - 0.10) <= 0.03 for v in slots["green"]),
                            "%s: green never near 10%%: %s" % (expr, slots["green"]))
            self.assertLessEqual(max(slots["blue"]), 0.005, expr)

        for title in ("Latency p50, p95, p99 by slot", "Upstream time by slot"):
            for expr, series in results[title]:
                slots = by_label(series, "slot")
                self.assertEqual(set(slots), {"blue", "green"}, expr)
                for slot, vs in slots.items():
                    self.assertTrue(vs and max(vs) > 0, "%s: %s has no value > 0" % (expr, slot))
                    self.assertLess(max(vs), 1.0, "%s: %s is implausibly slow" % (expr, slot))

        for expr, series in results["Slot weights"]:
            slots = by_label(series, "slot")
            self.assertEqual(set(slots), {"blue", "green"}, expr)
            self.assertIn(50, slots["green"], expr)
            self.assertEqual(slots["green"][-1], 0, expr)
            self.assertEqual(slots["blue"][-1], 100, expr)

        for expr, series in results["Active slot"]:
            slots = by_label(series, "slot")
            self.assertEqual(set(slots), {"blue"}, expr)
            self.assertEqual(slots["blue"][-1], 1, expr)

        for expr, series in results["Rollout phase"]:
            phases = by_label(series, "phase")
            self.assertNotIn(None, phases, expr)
            self.assertIn("rolled-back", phases, expr)
            last = max(series, key=lambda s: float(s["values"][-1][0]))
            self.assertEqual(last["metric"]["phase"], "rolled-back", expr)

        for expr, series in results["Rollbacks by reason"]:
            reasons = by_label(series, "reason")
            self.assertEqual(set(reasons), {"error_rate"}, expr)
            self.assertEqual(reasons["error_rate"][-1], 1, expr)
        print("\nPrometheus test: %.1f s" % (time.time() - started))


# e: release.sh against a real switchyard, with docker replaced by a stub.
class Release(DeployTestCase):
    def setUp(self):
        super().setUp()
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        self.docker_log = os.path.join(self.tmp, "docker.log")
        with open(os.path.join(self.bin, "docker"), "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\nexit 0\n' % self.docker_log)
        os.chmod(os.path.join(self.bin, "docker"), 0o755)
        self.compose_dir = os.path.join(self.tmp, "compose")
        os.mkdir(self.compose_dir)
        with open(os.path.join(self.compose_dir, ".env"), "w") as f:
            f.write("APP_GREEN_IMAGE=example/app:old\nGREEN_LATENCY=0ms\n")

    def release(self, image, admin_url, timeout=60):
        env = dict(os.environ,
                   PATH=self.bin + os.pathsep + os.environ.get("PATH", ""),
                   SWITCHYARD=binary(),
                   SWITCHYARD_ADMIN=admin_url,
                   SWITCHYARD_COMPOSE_DIR=self.compose_dir)
        env.pop("SWITCHYARD_TOKEN", None)
        return subprocess.run(["/bin/bash", os.path.join(DEPLOY, "release.sh"), image],
                              capture_output=True, text=True, timeout=timeout, env=env)

    def docker_calls(self):
        if not os.path.exists(self.docker_log):
            return []
        with open(self.docker_log) as f:
            return f.read().splitlines()

    def env_file(self):
        with open(os.path.join(self.compose_dir, ".env")) as f:
            return f.read().splitlines()

    def stack(self, green_error_rate):
        blue = self.demo_upstream("blue")
        green = self.demo_upstream("green", error_rate=green_error_rate)
        port, admin = self.switchyard(
            blue, green,
            # Errors only: a latency blip on a busy machine must not roll the healthy one back.
            "analysis:\n"
            "  interval: 1s\n"
            "  threshold: 1\n"
            "  min_requests: 5\n"
            "  checks: [ { metric: error_rate, max: 5% } ]\n"
            "rollout: { steps: [50, 100], bake: 0, health: { deadline: 5s } }\n")
        self.start_traffic(port, rate=100, clients=2)
        return admin

    def test_release_healthy_green_succeeds(self):
        admin = self.stack("0")
        r = self.release("example/app:2.0", "http://127.0.0.1:%d" % admin)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("compose up -d app-green", self.docker_calls())
        self.assertEqual(self.env_file(), ["GREEN_LATENCY=0ms", "APP_GREEN_IMAGE=example/app:2.0"])
        self.assertEqual(self.admin(admin, "GET", "/active-slot"), "green\n")
        self.assertEqual(self.phase(admin), "succeeded")

    def test_release_failing_green_is_rolled_back(self):
        admin = self.stack("50%")
        r = self.release("example/app:bad", "http://127.0.0.1:%d" % admin)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("compose up -d app-green", self.docker_calls())
        self.assertEqual(self.phase(admin), "rolled-back")
        self.assertEqual(self.admin(admin, "GET", "/active-slot"), "blue\n")
        self.assertIn("rolled back", r.stdout + r.stderr)

    def test_release_admin_unreachable(self):
        r = self.release("example/app:2.0", "http://127.0.0.1:%d" % free_port())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot reach", r.stderr)
        self.assertEqual(self.docker_calls(), [])
        self.assertEqual(self.env_file(), ["APP_GREEN_IMAGE=example/app:old", "GREEN_LATENCY=0ms"])

    def test_release_usage(self):
        r = subprocess.run(["/bin/bash", os.path.join(DEPLOY, "release.sh")], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)


# f: the runtime image installs a package for every shared library of the binary.
class Dockerfile(DeployTestCase):
    def runtime_stage(self):
        with open(os.path.join(DEPLOY, "Dockerfile")) as f:
            text = f.read().replace("\\\n", " ")
        stages = re.split(r"^FROM\s+", text, flags=re.M)
        self.assertGreaterEqual(len(stages), 3, "a build and a runtime stage")
        self.assertTrue(stages[1].startswith("debian:12 "), stages[1][:40])
        self.assertTrue(stages[-1].startswith("debian:12-slim"), stages[-1][:40])
        return stages[-1]

    def installed(self, stage):
        packages = set()
        for m in re.finditer(r"apt-get install([^&;\n]*)", stage):
            packages.update(w for w in m.group(1).split() if not w.startswith("-"))
        return packages

    def package_of(self, path):
        """The Debian package owning a library path, trying the /lib and /usr/lib spellings
        (usr-merge) and the resolved path."""
        candidates = [path, os.path.realpath(path)]
        for p in list(candidates):
            if p.startswith("/usr/lib/"):
                candidates.append(p[len("/usr"):])
            elif p.startswith("/lib/"):
                candidates.append("/usr" + p)
        for p in candidates:
            r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                return r.stdout.split(":")[0].strip()
        raise AssertionError("no package owns %s (tried %s)" % (path, candidates))

    def test_runtime_packages(self):
        tool("dpkg", "dpkg")
        stage = self.runtime_stage()
        installed = self.installed(stage)
        self.assertIn("curl", installed)
        self.assertIn("--no-install-recommends", stage)
        self.assertIn("rm -rf /var/lib/apt/lists", stage)
        r = subprocess.run([tool("ldd", "libc-bin"), binary()], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        libraries = re.findall(r"=>\s+(/\S+)", r.stdout)
        self.assertTrue(libraries, r.stdout)
        missing = {}
        for lib in libraries:
            package = self.package_of(lib)
            if SANITIZER_PACKAGE.match(package):
                continue
            if package not in installed and package not in BASE_IMAGE_PACKAGES:
                missing[lib] = package
        self.assertEqual(missing, {}, "the runtime stage installs %s" % sorted(installed))

    def test_runtime_image_shape(self):
        stage = self.runtime_stage()
        self.assertRegex(stage, r"useradd[^\n]*--uid 10001")
        self.assertRegex(stage, r"(?m)^USER switchyard")
        self.assertIn("/var/lib/switchyard", stage)
        self.assertIn("COPY --from=build", stage)
        self.assertIn("/usr/local/bin/switchyard", stage)
        self.assertIn("COPY deploy/switchyard.yaml /etc/switchyard/switchyard.yaml", stage)
        self.assertRegex(stage, r"(?m)^EXPOSE 8080 8081$")
        self.assertRegex(stage, r"HEALTHCHECK .*CMD curl -fsS http://127\.0\.0\.1:8081/healthz")
        self.assertIn('ENTRYPOINT ["switchyard"]', stage)
        self.assertIn('CMD ["-c", "/etc/switchyard/switchyard.yaml"]', stage)
        with open(os.path.join(SOURCE, ".dockerignore")) as f:
            ignored = [line.strip().rstrip("/") for line in f if not line.startswith("#")]
        self.assertIn("build", ignored)
        self.assertIn(".git", ignored)


if __name__ == "__main__":
    unittest.main(verbosity=2)
