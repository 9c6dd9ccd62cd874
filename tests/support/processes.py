"""What the Python tests share: the switchyard executable under test, tools from Debian
packages, waiting on a condition, child processes whose output goes to a file, and the
configuration of a proxy in front of two loopback upstreams.

Standard library only, for Debian's /usr/bin/python3. A test imports it after putting this
folder on sys.path.
"""

import os
import re
import shutil
import signal
import subprocess
import time


def binary():
    """The switchyard executable the build made (SWITCHYARD_BINARY, set by ctest)."""
    path = os.environ.get("SWITCHYARD_BINARY", "")
    if not path or not os.access(path, os.X_OK):
        raise AssertionError(
            "SWITCHYARD_BINARY must name the built switchyard executable, got %r" % path)
    return path


def tool(path_or_name, package):
    """The path of a tool the test needs; a missing one fails the test, naming the package."""
    found = path_or_name if os.path.isabs(path_or_name) else shutil.which(path_or_name)
    if not found or not os.access(found, os.X_OK):
        raise AssertionError("%s is missing: apt-get install %s (./build.sh deps)" %
                             (path_or_name, package))
    return found


def eventually(predicate, timeout, what):
    """Polls predicate until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Process:
    """A child whose output goes to a file in log_dir, so it never blocks on a full pipe. The
    caller stops it (stop()), which fails when the child, built with the sanitizers, reported
    an error, even one it went on from."""

    def __init__(self, log_dir, args, name=None, env=None):
        self.name = name or os.path.basename(args[0])
        self.log_path = os.path.join(log_dir, "%s.log" % self.name)
        n = 1
        while os.path.exists(self.log_path):
            n += 1
            self.log_path = os.path.join(log_dir, "%s-%d.log" % (self.name, n))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, cwd=log_dir,
                                     start_new_session=True)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, pattern, timeout=15):
        """The first match of pattern in the output, waiting for it."""

        def found():
            m = re.search(pattern, self.output())
            if not m and self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before logging %r:\n%s" %
                                     (self.name, self.proc.returncode, pattern, self.output()))
            return m

        return eventually(found, timeout, "%s to log %r" % (self.name, pattern))

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        output = self.output()
        if "Sanitizer:" in output or "runtime error:" in output:
            raise AssertionError("%s reported:\n%s" % (self.name, output[-5000:]))


# The start-up line of `switchyard -c`, with its plain and admin ports.
LISTENING = r"listening on 127\.0\.0\.1:(\d+) \(admin on 127\.0\.0\.1:(\d+)\)"


def write_two_slot_config(path, blue_port, green_port, extra=""):
    """A configuration for `switchyard -c`: the proxy and its admin API on 127.0.0.1:0, one
    worker, no state file, blue and green on the given loopback ports, then `extra`."""
    with open(path, "w") as f:
        f.write("listen: 127.0.0.1:0\n"
                "workers: 1\n"
                "admin: { listen: 127.0.0.1:0 }\n"
                "slots:\n"
                "  blue:  { endpoints: [\"127.0.0.1:%d\"] }\n"
                "  green: { endpoints: [\"127.0.0.1:%d\"] }\n"
                "state_file: off\n" % (blue_port, green_port) + extra)
