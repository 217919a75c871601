#!/usr/bin/env python3
"""The benchmark: one synthetic cluster served by kubernetai (wasm module and native library),
knotd and NSD in turn on the same machine, driven by dnsperf with the same query file; then the
large cluster for memory, load, watch-path and hot-swap figures. Prints every figure and its
ratio to the peer, as a Markdown table (also written to OUT/results.md).

As production sees it: each server is pinned to core 1 and dnsperf to core 0, so the server and
not the load generator is the bottleneck, and the figure compared is the server's own CPU time per
answered query (utime + stime of the whole process, from /proc, across the peak run). The large
cluster is started twice, pinned to one core and on both, for resident memory at one and at two
worker cores.

Run through bench/run.sh, which installs the peers and builds the binary first.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target/release/kubernetai")
FAKE_APISERVER = os.path.join(ROOT, "target/release/examples/fake_apiserver")
MODULE = os.path.join(ROOT, "target/guest/wasm32-wasip2/release/kubernetai_guest.wasm")
# CoreDNS's published figures (its scaling guide, kubernetes plugin, default Corefile, 2 vCPUs).
COREDNS_QPS = 33700


def coredns_mb(pods, services):
    return (pods + services) / 1000 + 54


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def rss_mb(pid):
    """Resident memory of a process and its peak, in MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    kb = lambda k: int(fields.get(k, "0 kB").split()[0])
    return kb("VmRSS") / 1024, kb("VmHWM") / 1024


def reset_peak(pid):
    """Starts the process's VmHWM afresh (Linux's clear_refs "5"), so a peak read later is the
    peak of what happened since, not of the start."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def answers(port, name="svc-0.ns-0.svc.cluster.local"):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, "A", "+short", "+time=1", "+tries=1"],
                         capture_output=True, text=True).stdout
    return out.strip()


def answered_by_socket(port, name="svc-0.ns-0.svc.cluster.local"):
    """One A query over UDP from this process: whether an answer with records came back (no dig
    process started per try, so a start-up time is not padded by the probe's own start-up)."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    query += b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.05)
        try:
            s.sendto(query, ("127.0.0.1", port))
            answer = s.recv(4096)
        except OSError:
            return False
    return len(answer) > 12 and answer[:2] == query[:2] and (answer[6] << 8 | answer[7]) > 0


def first_answer(port, proc, started, what, limit):
    """Seconds from `started` to the server's first answer from the cluster, probed every 20 ms."""
    while not answered_by_socket(port):
        if proc.poll() is not None or time.time() - started > limit:
            sys.exit(f"{what} did not answer on port {port}")
        time.sleep(0.02)
    return time.time() - started


def pin_threads(proc):
    """Pins every thread of the server to the server's core: knot pins its UDP workers to cores
    of its own choosing (its first worker to core 0, dnsperf's), which `taskset` at start does
    not prevent, and may start workers after it first answers. `taskset -c CORE server` execs
    the server: the pid is the server's."""
    subprocess.run(["taskset", "-a", "-p", "-c", SERVER_CORE, str(proc.pid)], check=True, capture_output=True)


def wait_answering(port, proc, what):
    """Waits until the server answers, its threads pinned to the server's core."""
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited: {proc.returncode}")
        if answers(port):
            pin_threads(proc)
            return
        time.sleep(0.1)
    sys.exit(f"{what} did not answer on port {port}")


SERVER_CORE = "1"
CLIENT_CORE = "0"


def cpu_seconds(pid):
    """User + system CPU time so far of a process, its threads and its live children (NSD serves
    from forked processes)."""
    total = 0.0
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stats[int(entry)] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                pass
    family = {pid}
    grew = True
    while grew:
        grew = False
        for p, fields in stats.items():
            if p not in family and int(fields[1]) in family:
                family.add(p)
                grew = True
    for p in family:
        if p in stats:
            total += int(stats[p][11]) + int(stats[p][12])
    return total / os.sysconf("SC_CLK_TCK")


def dnsperf(port, queries, seconds, rate=None, verbose=False):
    # -b 2048: dnsperf's own sockets get 2 MiB buffers. With its default a burst of answers (a
    # server answering a batch of queries at once) could overflow them, and dnsperf counted the
    # answers it dropped itself as lost (100 at once: its whole window).
    cmd = ["taskset", "-c", CLIENT_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
           "-l", str(seconds), "-c", "4", "-T", "1", "-q", "100", "-t", "2", "-b", "2048"]
    if rate:
        cmd += ["-Q", str(int(rate))]
    if verbose:
        cmd += ["-v"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    num = lambda pattern: float(re.search(pattern, out).group(1))
    r = {
        "qps": num(r"Queries per second:\s+([\d.]+)"),
        "sent": num(r"Queries sent:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "completed": num(r"Queries completed:\s+(\d+)"),
        "avg_ms": num(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
    }
    if verbose:
        lat = sorted(float(m.group(1)) * 1000 for m in re.finditer(r"^> \S+ .* ([\d.]+)$", out, re.M))
        if lat:
            q = statistics.quantiles(lat, n=100)
            r.update(p50_ms=q[49], p90_ms=q[89], p99_ms=q[98])
    return r


def udp_receive_buffer_drops():
    """Datagrams the kernel dropped for a full socket receive buffer, since boot (any socket)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pinned(cmd, core=SERVER_CORE):
    return ["taskset", "-c", core] + cmd if core else cmd


def kubernetai(data, port, extra, log, core=SERVER_CORE, api=None, binary=BINARY, metrics=None):
    """The server on `data`'s cluster: from its manifest file, or from the API server at `api`;
    with `metrics`, its Prometheus endpoint on that port."""
    corefile = os.path.join(data, f"Corefile.{port}")
    source = f"endpoint {api}\n        startup_timeout 120s" if api else f"manifests {os.path.join(data, 'cluster.json')}"
    prometheus = f"    prometheus 127.0.0.1:{metrics}\n" if metrics else ""
    with open(corefile, "w") as f:
        f.write(f".:{port} {{\n    bind 127.0.0.1\n{prometheus}    kubernetai cluster.local in-addr.arpa ip6.arpa {{\n"
                f"        {source}\n        pods verified\n    }}\n}}\n")
    return subprocess.Popen(pinned([binary, "-conf", corefile] + extra, core), stdout=log, stderr=subprocess.STDOUT)


def knot(data, port, log):
    run = os.path.join(data, f"knot.{port}")
    os.makedirs(run, exist_ok=True)
    conf = os.path.join(run, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {run}\n    udp-workers: 1\n    tcp-workers: 1\n"
                f"database:\n    storage: {run}\ntemplate:\n  - id: default\n    storage: {data}\n    journal-content: none\n"
                f"    semantic-checks: off\nzone:\n  - domain: cluster.local\n    file: cluster.local.zone\n"
                f"  - domain: 10.in-addr.arpa\n    file: 10.in-addr.arpa.zone\n"
                f"  - domain: d.f.ip6.arpa\n    file: d.f.ip6.arpa.zone\n")
    return subprocess.Popen(pinned(["knotd", "-c", conf]), stdout=log, stderr=subprocess.STDOUT)


def nsd(data, port, log):
    run = os.path.join(data, f"nsd.{port}")
    os.makedirs(run, exist_ok=True)
    conf = os.path.join(run, "nsd.conf")
    with open(conf, "w") as f:
        f.write(f"server:\n    ip-address: 127.0.0.1@{port}\n    server-count: 1\n    username: \"\"\n    chroot: \"\"\n"
                f"    zonesdir: \"{data}\"\n    database: \"\"\n    pidfile: \"{run}/nsd.pid\"\n"
                f"    xfrdfile: \"{run}/xfrd.state\"\n    zonelistfile: \"{run}/zone.list\"\n    xfrdir: \"{run}\"\n"
                # Debian's NSD limits responses per client to 200 a second (RRL): off, as for knot.
                f"    verbosity: 0\n    reuseport: yes\n    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\n"
                f"remote-control:\n    control-enable: no\n"
                f"zone:\n    name: cluster.local\n    zonefile: cluster.local.zone\n"
                f"zone:\n    name: 10.in-addr.arpa\n    zonefile: 10.in-addr.arpa.zone\n"
                f"zone:\n    name: d.f.ip6.arpa\n    zonefile: d.f.ip6.arpa.zone\n")
    return subprocess.Popen(pinned(["nsd", "-d", "-c", conf]), stdout=log, stderr=subprocess.STDOUT)


def generate(out, sizes):
    """Generates a cluster unless `out` already holds this generator's output for these sizes."""
    script = os.path.join(ROOT, "bench/generate.py")
    with open(script, "rb") as f:
        stamp = f"{zlib.crc32(f.read()):08x} {' '.join(sizes)}"
    stamp_file = os.path.join(out, "generated-by")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp:
        return
    subprocess.run([sys.executable, script, out] + sizes, check=True)
    with open(stamp_file, "w") as f:
        f.write(stamp)


def qps_runs(args, data, log):
    queries = os.path.join(data, "queries.txt")
    servers = [
        ("kubernetai (wasm)", lambda p: kubernetai(data, p, ["-admin", "none"], log)),
        ("kubernetai (native)", lambda p: kubernetai(data, p, ["-module", "native", "-admin", "none"], log)),
        ("knot", lambda p: knot(data, p, log)),
        ("nsd", lambda p: nsd(data, p, log)),
    ]
    results = {}
    for name, start in servers:
        def measure(proc, port):
            peak = peak_run(proc, port, queries, args.seconds)
            steady = dnsperf(port, queries, args.seconds, rate=0.8 * peak["qps"], verbose=True)
            rss, _ = rss_mb(proc.pid)
            print(f"{name}: {peak['qps']:.0f} qps peak ({peak['lost']:.0f} lost), "
                  f"{peak['us_per_query']:.2f} µs server CPU per answer; at 80 %: "
                  f"{steady['qps']:.0f} qps, {steady['lost']:.0f} lost, p50 {steady.get('p50_ms', 0):.3f} ms, "
                  f"p99 {steady.get('p99_ms', 0):.3f} ms; RSS {rss:.1f} MiB", flush=True)
            return {"peak": peak, "steady": steady, "rss": rss}
        results[name] = serving(name, start, measure)
    return results


def serving(name, start, measure):
    """Starts a server on a free port, waits until it answers (pinned), measures it, stops it."""
    port = free_port()
    proc = start(port)
    try:
        wait_answering(port, proc, name)
        return measure(proc, port)
    finally:
        stop(proc)


def admin_request(port, method, path, body=b""):
    """One request to the server's admin endpoint: (status, text)."""
    import http.client
    for _ in range(100):  # the admin endpoint binds just after the DNS listeners
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(method, path, body=body)
            reply = conn.getresponse()
            return reply.status, reply.read().decode()
        except ConnectionRefusedError:
            time.sleep(0.1)
    sys.exit(f"the admin endpoint on port {port} does not answer")


def peak_run(proc, port, queries, seconds):
    """dnsperf at full speed after a warm-up, with the server's CPU µs per answered query."""
    dnsperf(port, queries, 2)
    pin_threads(proc)
    before, t0, drops = cpu_seconds(proc.pid), time.time(), udp_receive_buffer_drops()
    peak = dnsperf(port, queries, seconds)
    used, wall = cpu_seconds(proc.pid) - before, time.time() - t0
    peak["rcvbuf_drops"] = udp_receive_buffer_drops() - drops
    peak["us_per_query"] = used * 1e6 / max(1, peak["completed"])
    # A comparison counts only when the server was the bottleneck: near all of its one core.
    peak["cpu_share"] = used / max(wall, 1e-9)
    return peak


def shadow_runs(args, data, log):
    """What shadowing costs the serving path: the built-in module shadowed by itself at 10 % and
    at 100 % of queries, against no shadow, each at its peak with the server pinned to one core
    (the comparing thread shares that core, as under a CPU limit)."""
    queries = os.path.join(data, "queries.txt")
    results = {}
    for label, rate in (("no shadow", None), ("shadow 10 %", "10%"), ("shadow 100 %", "100%")):
        port, admin = free_port(), free_port()
        extra = ["-admin", f"127.0.0.1:{admin}"] + (["-module.shadow-rate", rate] if rate else [])
        proc = kubernetai(data, port, extra, log)
        try:
            wait_answering(port, proc, label)
            if rate:
                status, text = admin_request(admin, "POST", "/module/shadow")
                if status != 200:
                    sys.exit(f"{label}: POST /module/shadow: {status} {text}")
            peak = peak_run(proc, port, queries, args.seconds)
            report = json.loads(admin_request(admin, "GET", "/module/shadow")[1]) if rate else {}
            results[label] = {"peak": peak, "report": report}
            shadowed = (f"; {report.get('queries', 0)} shadowed, {report.get('skipped', 0)} skipped, "
                        f"{report.get('differing_queries', 0)} differing") if rate else ""
            print(f"{label}: {peak['qps']:.0f} qps peak ({peak['lost']:.0f} lost), "
                  f"{peak['us_per_query']:.2f} µs server CPU per answer{shadowed}", flush=True)
        finally:
            stop(proc)
    return results


def compare_large(args, data, log, rounds):
    """The large cluster served by kubernetai (wasm and native) and knot, interleaved `rounds`
    times, each pinned to one core with dnsperf on the other: QPS, server CPU per answer, the
    server's CPU share (a comparison counts only when each is near 100 %: then the server, not
    dnsperf, is the bottleneck) and resident memory once loaded."""
    queries = os.path.join(data, "queries.txt")
    servers = [
        ("kubernetai (wasm)", lambda p: kubernetai(data, p, ["-admin", "none"], log)),
        ("kubernetai (native)", lambda p: kubernetai(data, p, ["-module", "native", "-admin", "none"], log)),
        ("knot", lambda p: knot(data, p, log)),
    ]
    runs = {name: [] for name, _ in servers}
    for r in range(rounds):
        for name, start in servers:
            def measure(proc, port):
                peak = peak_run(proc, port, queries, args.seconds)
                rss, _ = rss_mb(proc.pid)
                print(f"round {r + 1}, {name}: {peak['qps']:.0f} qps ({peak['lost']:.0f} lost, "
                      f"{peak['rcvbuf_drops']} dropped by full receive buffers), "
                      f"{peak['us_per_query']:.2f} µs CPU per answer, CPU share {100 * peak['cpu_share']:.0f} %, "
                      f"RSS {rss:.1f} MiB", flush=True)
                return {**peak, "rss": rss}
            runs[name].append(serving(name, start, measure))
    median = lambda name, key: statistics.median(x[key] for x in runs[name])
    w, n, k = "kubernetai (wasm)", "kubernetai (native)", "knot"
    rows = [("| figure (median of %d interleaved rounds) | kubernetai (wasm) | kubernetai (native) | knot | wasm / knot |" % rounds),
            "| --- | --- | --- | --- | --- |"]
    for label, key, fmt in (("server CPU per answered query (µs)", "us_per_query", "{:.2f}"), ("QPS", "qps", "{:.0f}"),
                            ("server CPU share", "cpu_share", "{:.0%}"), ("RSS once loaded (MiB)", "rss", "{:.1f}")):
        cells = [fmt.format(median(x, key)) for x in (w, n, k)]
        rows.append(f"| {label} | {' | '.join(cells)} | {median(w, key) / median(k, key):.2f} × |")
    text = "\n".join(rows)
    print("\n" + text)
    with open(os.path.join(args.out, "compare-large.md"), "w") as f:
        f.write(text + "\n")
    return runs


def clusters_run(data, log_path, count, core=SERVER_CORE):
    """`count` large clusters in one server block (the same manifest under zones c1.local…):
    seconds from the server's start until the last cluster answers, and resident memory then."""
    port = free_port()
    corefile = os.path.join(data, f"Corefile.clusters.{count}")
    stanzas = "".join(f"    kubernetai c{i}.local {{\n        manifests {os.path.join(data, 'cluster.json')}\n"
                      f"        pods verified\n    }}\n" for i in range(1, count + 1))
    with open(corefile, "w") as f:
        f.write(f".:{port} {{\n    bind 127.0.0.1\n{stanzas}}}\n")
    with open(log_path, "w") as log:
        started = time.time()
        proc = subprocess.Popen(pinned([BINARY, "-conf", corefile, "-admin", "none"], core), stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            last = f"svc-0.ns-0.svc.c{count}.local"
            while not answered_by_socket(port, last):
                if proc.poll() is not None or time.time() - started > 300:
                    sys.exit(f"{count} clusters: c{count}.local did not answer")
                time.sleep(0.02)
            took = time.time() - started
            return {"start_s": took, "rss": rss_mb(proc.pid)[0]}
        finally:
            stop(proc)


def large_run(args, data, log_path, core):
    """Memory, load, watch path and swap with the large cluster, from the server's own log;
    `core` pins the server to one core, None leaves it both."""
    module = os.path.join(data, "module.wasm")
    shutil.copy(MODULE, module)
    port = free_port()
    admin = f"127.0.0.1:{free_port()}"
    with open(log_path, "w") as log:
        started = time.time()
        proc = kubernetai(data, port, ["-module", module, "-admin", admin], log, core)
        try:
            startup = first_answer(port, proc, started, "kubernetai (large)", 120)
            rss, _ = rss_mb(proc.pid)
            reset_peak(proc.pid)
            t0 = time.time()
            body = None
            # The admin endpoint opens just after DNS does.
            for _ in range(50):
                try:
                    t0 = time.time()
                    req = urllib.request.Request(f"http://{admin}/module/swap", method="POST")
                    body = urllib.request.urlopen(req, timeout=120).read().decode()
                    break
                except urllib.error.URLError:
                    time.sleep(0.1)
            swap = time.time() - t0
            rss_after, peak = rss_mb(proc.pid)
        finally:
            stop(proc)
    text = open(log_path).read()
    m = re.search(r"loaded (\d+) objects from \d+ file\(s\) in (\d+) ms \((\d+) events/s per instance\)", text)
    return {"objects": int(m.group(1)), "load_ms": int(m.group(2)), "events_per_s": int(m.group(3)),
            "startup_s": startup, "rss": rss, "rss_after_swap": rss_after, "hwm": peak, "swap_s": swap,
            "swap_text": body.strip()}


def custom_section(module, tag):
    """`module`'s bytes with a custom section naming `tag`: a valid module with a digest of its own."""
    body = bytes([len(b"kubernetai-bench")]) + b"kubernetai-bench" + tag.encode()
    size, leb = len(body), b""
    while True:
        byte, size = size & 0x7F, size >> 7
        leb += bytes([byte | 0x80 if size else byte])
        if not size:
            break
    return open(module, "rb").read() + b"\0" + leb + body


def tag_move_run(data, log_path, core, poll="1s"):
    """A tag move on the large cluster: Debian's docker-registry on loopback, the module pushed
    with `kubernetai module push`, the server following the tag (`-module.poll`); then the tag
    moved to another module. Returns the seconds from the push's end to the log's `module
    swapped`, and the swap's own duration as the server reports it."""
    registry_dir = os.path.join(data, "registry")
    shutil.rmtree(registry_dir, ignore_errors=True)
    os.makedirs(registry_dir)
    reg_port = free_port()
    conf = os.path.join(registry_dir, "config.yml")
    with open(conf, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {registry_dir}/s\n"
                f"http:\n  addr: 127.0.0.1:{reg_port}\n")
    registry = subprocess.Popen(["docker-registry", "serve", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tag = f"oci://127.0.0.1:{reg_port}/bench/kubernetai:stable"

    def push(tag_text):
        path = os.path.join(registry_dir, f"{tag_text}.wasm")
        with open(path, "wb") as f:
            f.write(custom_section(MODULE, tag_text))
        for _ in range(100):
            out = subprocess.run([BINARY, "module", "push", path, tag, "-module.plain-http"], capture_output=True, text=True)
            if out.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(out.stdout + out.stderr)

    try:
        push("v1")
        port = free_port()
        with open(log_path, "w") as log:
            proc = kubernetai(data, port, ["-module", tag, "-module.plain-http", "-module.poll", poll, "-admin", "none"],
                              log, core)
            try:
                first_answer(port, proc, time.time(), "kubernetai (large, from a registry)", 120)
                before = open(log_path).read().count("module swapped")
                push("v2")
                moved = time.time()
                deadline = moved + 120
                while open(log_path).read().count("module swapped") == before:
                    if time.time() > deadline:
                        raise RuntimeError("the tag move was not swapped in")
                    time.sleep(0.01)
                elapsed = time.time() - moved
            finally:
                stop(proc)
    finally:
        stop(registry)
    m = re.findall(r"module swapped in \d+ server block\(s\) in (\d+) ms", open(log_path).read())
    return elapsed, int(m[-1]) / 1000 if m else 0.0


def cached_start(data, log_path, core):
    """Start to synced answers with the compiled module kept on disk (`-module.cache`): the first
    start fills the cache, the second is measured, as a restarted server finds it."""
    cache = os.path.join(data, "module-cache")
    shutil.rmtree(cache, ignore_errors=True)
    times = [timed_start(data, log_path, core, ["-module.cache", cache], "kubernetai (module cache)")
             for _ in range(2)]
    shutil.rmtree(cache, ignore_errors=True)
    return times[1]


def shipped_start(data, log_path, core):
    """Start to synced answers of a server installed as deploy/Dockerfile installs it: the
    built-in module compiled ahead of time beside the executable (`kubernetai module compile`).
    A copy of the binary is used, so no other run finds that machine code."""
    install = os.path.join(data, "installed")
    shutil.rmtree(install, ignore_errors=True)
    os.makedirs(install)
    binary = os.path.join(install, "kubernetai")
    shutil.copy(BINARY, binary)
    subprocess.run([binary, "module", "compile"], check=True, capture_output=True)
    took = timed_start(data, log_path, core, [], "kubernetai (installed)", binary=binary)
    shutil.rmtree(install, ignore_errors=True)
    return took


def timed_start(data, log_path, core, extra, what, binary=BINARY):
    """Seconds from starting the server to its first answer."""
    port = free_port()
    with open(log_path, "w") as log:
        started = time.time()
        proc = kubernetai(data, port, ["-admin", "none"] + extra, log, core, binary=binary)
        try:
            return first_answer(port, proc, started, what, 120)
        finally:
            stop(proc)


def applied_events(metrics_port):
    """Watch events applied so far (`kubernetai_watch_events_total`, every kind), or None."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kubernetai_watch_events_total{") and 'event="apply"' in line)


def relist_peak(proc, fake, metrics_port, command, objects):
    """Injects `command` into the fake API server (`410`: every watch gets 410 Gone; `restart`: a
    new history) and waits until every object was applied again: the peak resident memory of
    that relist (VmHWM reset just before) and the seconds it took."""
    before = applied_events(metrics_port)
    reset_peak(proc.pid)
    started = time.time()
    fake.stdin.write(command + "\n")
    fake.stdin.flush()
    if fake.stdout.readline().strip() != "ok":
        sys.exit(f"fake_apiserver refused {command!r}")
    while (applied_events(metrics_port) or 0) < before + objects:
        if proc.poll() is not None or time.time() - started > 300:
            sys.exit(f"the relist after {command!r} did not finish")
        time.sleep(0.2)
    return rss_mb(proc.pid)[1], time.time() - started


def api_run(data, log_path, core, relists=False):
    """The large cluster through the tests' fake API server (list and watch over HTTP): resident
    memory once synced, the time from the server's start to its first answer, and with `relists`
    the peak of a relist of every watch after 410 Gone and after the API server's restart."""
    fake = subprocess.Popen([FAKE_APISERVER, os.path.join(data, "cluster.json")], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = fake.stdout.readline().strip()
        if not url.startswith("http://"):
            sys.exit(f"fake_apiserver did not start: {url!r}")
        port, metrics = free_port(), free_port()
        with open(log_path, "w") as log:
            started = time.time()
            proc = kubernetai(data, port, ["-admin", "none"], log, core, api=url, metrics=metrics)
            try:
                startup = first_answer(port, proc, started, "kubernetai (API server)", 300)
                # Synced: every object's first apply is counted.
                while applied_events(metrics) is None:
                    time.sleep(0.2)
                objects = applied_events(metrics)
                rss, peak = rss_mb(proc.pid)
                result = {"startup_s": startup, "rss": rss, "hwm": peak}
                if relists:
                    for command in ("410", "restart"):
                        result[f"relist_{command}"] = relist_peak(proc, fake, metrics, command, objects)
                    result["rss_after_relists"] = rss_mb(proc.pid)[0]
            finally:
                stop(proc)
    finally:
        fake.kill()
        fake.wait()
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, "target/bench"))
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--services", type=int, default=5000)
    p.add_argument("--headless", type=int, default=500)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--large-services", type=int, default=10002)
    p.add_argument("--large-headless", type=int, default=1000)
    p.add_argument("--large-pods", type=int, default=100000)
    p.add_argument("--large-only", action="store_true", help="only the large cluster's memory, start-up and swap")
    p.add_argument("--qps-only", action="store_true", help="only the query runs of the default cluster")
    p.add_argument("--shadow-only", action="store_true", help="only the cost of shadowing a module")
    p.add_argument("--start-only", action="store_true", help="only the large cluster's start-up times, pinned")
    p.add_argument("--clusters", type=int, metavar="N", default=0,
                   help="only N large clusters in one server block against one: start and memory, pinned")
    p.add_argument("--compare-large", type=int, metavar="ROUNDS", default=0,
                   help="only kubernetai against knot on the large cluster, ROUNDS interleaved rounds")
    p.add_argument("--tag-move-only", action="store_true",
                   help="only the time from a registry tag's move to the new module serving, large cluster")
    args = p.parse_args()
    default = os.path.join(args.out, "default")
    large = os.path.join(args.out, "large")
    generate(default, ["--services", str(args.services), "--headless", str(args.headless), "--pods", str(args.pods)])
    generate(large, ["--services", str(args.large_services), "--headless", str(args.large_headless),
                     "--pods", str(args.large_pods)])
    if args.clusters:
        one = clusters_run(large, os.path.join(args.out, "clusters-1.log"), 1)
        many = clusters_run(large, os.path.join(args.out, f"clusters-{args.clusters}.log"), args.clusters)
        print(f"one large cluster: {one['rss']:.1f} MiB, answering after {one['start_s']:.2f} s; {args.clusters} in one "
              f"block: {many['rss']:.1f} MiB (+{(many['rss'] - one['rss']) / max(1, args.clusters - 1):.1f} MiB a cluster), "
              f"the last answering after {many['start_s']:.2f} s (pinned to one core)", flush=True)
        return
    if args.compare_large:
        with open(os.path.join(args.out, "compare-large.log"), "w") as log:
            compare_large(args, large, log, args.compare_large)
        return
    if args.start_only:
        big = large_run(args, large, os.path.join(args.out, "large.log"), SERVER_CORE)
        warm = cached_start(large, os.path.join(args.out, "large-cached.log"), SERVER_CORE)
        shipped = shipped_start(large, os.path.join(args.out, "large-installed.log"), SERVER_CORE)
        print(f"large cluster, pinned to one core, start to synced answers: {big['startup_s']:.2f} s for a bare "
              f"binary (the module's machine code from the binary), {warm:.2f} s restarted with -module.cache, {shipped:.2f} s installed with the module "
              f"compiled ahead of time; RSS {big['rss']:.1f} MiB", flush=True)
        return
    if args.tag_move_only:
        for poll in ("1s", "200ms"):
            total, swap = tag_move_run(large, os.path.join(args.out, "large-tag-move.log"), SERVER_CORE, poll)
            print(f"large cluster, pinned to one core, -module.poll {poll}: tag moved to new module serving in "
                  f"{total:.2f} s (the swap itself {swap:.2f} s; the rest is waiting for the poll and the pull)", flush=True)
        return
    if args.shadow_only:
        with open(os.path.join(args.out, "shadow.log"), "w") as log:
            shadow_runs(args, default, log)
        return
    if not args.large_only:
        with open(os.path.join(args.out, "servers.log"), "w") as log:
            q = qps_runs(args, default, log)
            sh = shadow_runs(args, default, log)
    if args.qps_only:
        return
    big = large_run(args, large, os.path.join(args.out, "large.log"), SERVER_CORE)
    big2 = large_run(args, large, os.path.join(args.out, "large-2cores.log"), None)
    warm = cached_start(large, os.path.join(args.out, "large-cached.log"), SERVER_CORE)
    print(f"large cluster, restart with -module.cache: synced answers after {warm:.2f} s on one core", flush=True)
    shipped = shipped_start(large, os.path.join(args.out, "large-installed.log"), SERVER_CORE)
    print(f"large cluster, first start as installed (module compiled ahead of time): synced answers after "
          f"{shipped:.2f} s on one core", flush=True)
    print(f"large cluster: RSS {big['rss']:.1f} MiB on one core, {big2['rss']:.1f} MiB on two; synced answers after "
          f"{big['startup_s']:.2f} s on one core, {big2['startup_s']:.2f} s on two; swap {big['swap_s']:.2f} s, "
          f"peak during it {big['hwm']:.1f} MiB ({big['hwm'] / big['rss']:.2f} × steady), "
          f"{big['rss_after_swap']:.1f} MiB after", flush=True)
    via_api = api_run(large, os.path.join(args.out, "large-api.log"), SERVER_CORE, relists=True)
    via_api2 = api_run(large, os.path.join(args.out, "large-api-2cores.log"), None)
    print(f"large cluster through the API server: RSS {via_api['rss']:.1f} MiB on one core (peak {via_api['hwm']:.1f}), "
          f"{via_api2['rss']:.1f} MiB on two; synced answers after {via_api['startup_s']:.2f} s on one core, "
          f"{via_api2['startup_s']:.2f} s on two", flush=True)
    for command, what in (("410", "every watch answered 410 Gone"), ("restart", "the API server restarted")):
        peak, took = via_api[f"relist_{command}"]
        print(f"large cluster through the API server, relist of every watch ({what}): peak {peak:.1f} MiB "
              f"({peak / via_api['rss']:.2f} × steady), {took:.1f} s", flush=True)
    print(f"  RSS after both relists {via_api['rss_after_relists']:.1f} MiB", flush=True)
    if args.large_only:
        return

    w, n, k, d = q["kubernetai (wasm)"], q["kubernetai (native)"], q["knot"], q["nsd"]
    ratio = lambda a, b: f"{a / b:.2f}" if b else "-"
    rows = [
        ("server CPU per answered query, pinned (µs)", *(f"{x['peak']['us_per_query']:.2f}" for x in (w, n, k, d)), "",
         f"{ratio(w['peak']['us_per_query'], k['peak']['us_per_query'])} × knot (target ≤ 1.3), "
         f"{ratio(n['peak']['us_per_query'], w['peak']['us_per_query'])} native/wasm"),
        ("QPS, peak (query mix)", f"{w['peak']['qps']:.0f}", f"{n['peak']['qps']:.0f}", f"{k['peak']['qps']:.0f}",
         f"{d['peak']['qps']:.0f}", f"{COREDNS_QPS}",
         f"{ratio(w['peak']['qps'], k['peak']['qps'])} × knot, {ratio(w['peak']['qps'], n['peak']['qps'])} × native, "
         f"{ratio(w['peak']['qps'], COREDNS_QPS)} × CoreDNS"),
        ("lost at peak", f"{w['peak']['lost']:.0f}", f"{n['peak']['lost']:.0f}", f"{k['peak']['lost']:.0f}",
         f"{d['peak']['lost']:.0f}", "", ""),
        ("lost at 80 % of own peak", f"{w['steady']['lost']:.0f}", f"{n['steady']['lost']:.0f}",
         f"{k['steady']['lost']:.0f}", f"{d['steady']['lost']:.0f}", "", ""),
    ]
    for pct in ("p50", "p90", "p99"):
        key = f"{pct}_ms"
        rows.append((f"latency {pct} at 80 % (ms)", *(f"{x['steady'].get(key, 0):.3f}" for x in (w, n, k, d)), "",
                     f"{ratio(w['steady'].get(key, 0), k['steady'].get(key, 0))} × knot"))
    base = sh["no shadow"]["peak"]
    for label in ("shadow 10 %", "shadow 100 %"):
        x = sh[label]["peak"]
        rows.append((f"QPS / CPU per query with a {label[7:]} shadow (same module)", f"{x['qps']:.0f} / {x['us_per_query']:.2f} µs",
                     "", "", "", "", f"{ratio(x['qps'], base['qps'])} × the QPS without ({base['qps']:.0f}), "
                     f"{sh[label]['report'].get('skipped', 0)} skipped"))
    pods, svcs = args.pods, args.services + args.headless
    rows.append(("RSS, default cluster (MiB)", *(f"{x['rss']:.1f}" for x in (w, n, k, d)),
                 f"{coredns_mb(pods, svcs):.0f}", f"{ratio(w['rss'], coredns_mb(pods, svcs))} × CoreDNS"))
    lp, ls = args.large_pods, args.large_services + args.large_headless
    rows += [
        (f"RSS, large cluster ({ls} services, {lp} pods) (MiB)", f"{big['rss']:.1f}", "", "", "",
         f"{coredns_mb(lp, ls):.0f} MB", f"target ≤ 100"),
        ("RSS, large cluster, two cores (MiB)", f"{big2['rss']:.1f}", "", "", "", "",
         f"+{big2['rss'] - big['rss']:.1f} MiB over one core (target ≤ 10)"),
        ("start to synced answers, large, from the manifest (s)", f"{big['startup_s']:.2f} (two cores {big2['startup_s']:.2f})",
         "", "", "", "", "target ≤ 2"),
        ("same, restarted with its compiled module kept (`-module.cache`) (s)", f"{warm:.2f}", "", "", "", "", "target ≤ 2"),
        ("same, first start as installed (module compiled ahead of time, deploy/Dockerfile) (s)", f"{shipped:.2f}",
         "", "", "", "", "target ≤ 2"),
        ("RSS, large cluster through the API server, one / two cores (MiB)",
         f"{via_api['rss']:.1f} / {via_api2['rss']:.1f} (peak {via_api['hwm']:.1f})", "", "", "", "", "target ≤ 100"),
        ("start to synced answers, large, through the API server (s)",
         f"{via_api['startup_s']:.2f} (two cores {via_api2['startup_s']:.2f})", "", "", "", "", ""),
        ("RSS after a hot swap, large (MiB)", f"{big['rss_after_swap']:.1f} (peak during the swap {big['hwm']:.1f})", "", "", "", "",
         f"peak {big['hwm'] / big['rss']:.2f} × steady (target ≤ 1.2)"),
        (f"snapshot load, {big['objects']} objects (ms)", f"{big['load_ms']}", "", "", "", "", "target < 1000"),
        ("watch path (events/s per instance)", f"{big['events_per_s']}", "", "", "", "", "target ≥ 50000"),
        ("hot swap, large (s)", f"{big['swap_s']:.2f}", "", "", "", "", "target ≤ 1.5; " + big["swap_text"]),
    ]
    table = ["| figure | kubernetai (wasm) | kubernetai (native) | knot | NSD | CoreDNS (published) | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(table)
    print("\n" + text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
