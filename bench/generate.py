#!/usr/bin/env python3
"""A synthetic cluster, generated deterministically, in the three forms the benchmark serves it:

- cluster.json: the `kubectl get ... -o json` List kubernetai reads (`manifests`);
- cluster.local.zone and 10.in-addr.arpa.zone: the same names as static zones for knot and NSD,
  record for record what kubernetai answers (A, SRV, headless endpoints, PTR);
- queries.txt: a dnsperf query file with the mix of a cluster's traffic: A for services ~60 %,
  AAAA NODATA ~10 %, SRV ~10 %, headless A ~10 %, PTR ~5 %, NXDOMAIN ~5 %.

Usage: generate.py OUT_DIR [--services N] [--headless N] [--pods N] [--namespaces N] [--queries N]
"""

import argparse
import json
import os
import random

TTL = 5


def ip(base, i):
    """The i-th address of a /16 (base "10.96"), skipping .0 and .255."""
    return f"{base}.{i // 254 % 256}.{i % 254 + 1}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--services", type=int, default=5000)
    p.add_argument("--headless", type=int, default=500)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--namespaces", type=int, default=50)
    p.add_argument("--queries", type=int, default=100000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}"}} for n in range(a.namespaces)]
    records = []  # (owner relative to cluster.local., type, data)
    ptrs = []  # (reverse owner, target)
    pod_ips = []
    for i in range(a.pods):
        ns = f"ns-{i % a.namespaces}"
        addr = f"10.{100 + i // 64516}.{i // 254 % 254}.{i % 254 + 1}"
        pod_ips.append((ns, addr))
        items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pod-{i}", "namespace": ns},
                      "status": {"phase": "Running", "podIP": addr, "podIPs": [{"ip": addr}]}})

    services = []
    for i in range(a.services):
        ns = f"ns-{i % a.namespaces}"
        name = f"svc-{i}"
        cip = ip("10.96", i)
        services.append((name, ns))
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                      "spec": {"type": "ClusterIP", "clusterIP": cip, "clusterIPs": [cip],
                               "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        # Two ready endpoints from the pods, as a real service has.
        eps = [pod_ips[(2 * i + k) % max(1, len(pod_ips))][1] for k in range(2)] if pod_ips else []
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                      "metadata": {"name": f"{name}-a", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
                      "endpoints": [{"addresses": [e], "conditions": {"ready": True}} for e in eps],
                      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        base = f"{name}.{ns}.svc"
        records.append((base, "A", cip))
        records.append((base, "SRV", f"0 100 80 {base}.cluster.local."))
        records.append((f"_http._tcp.{base}", "SRV", f"0 100 80 {base}.cluster.local."))
        o = cip.split(".")
        ptrs.append((f"{o[3]}.{o[2]}.{o[1]}", f"{base}.cluster.local."))

    headless = []
    for i in range(a.headless):
        ns = f"ns-{i % a.namespaces}"
        name = f"hl-{i}"
        n = rng.randint(1, 10)
        addrs = [ip("10.200", i * 10 + k) for k in range(n)]
        headless.append((name, ns))
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                      "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                      "metadata": {"name": f"{name}-a", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
                      "endpoints": [{"addresses": [e], "hostname": f"{name}-{k}", "conditions": {"ready": True}}
                                    for k, e in enumerate(addrs)],
                      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        base = f"{name}.{ns}.svc"
        weight = max(1, 100 // n)
        for k, e in enumerate(addrs):
            records.append((base, "A", e))
            records.append((f"{name}-{k}.{base}", "A", e))
            records.append((f"_http._tcp.{base}", "SRV", f"0 {weight} 80 {name}-{k}.{base}.cluster.local."))
            o = e.split(".")
            ptrs.append((f"{o[3]}.{o[2]}.{o[1]}", f"{name}-{k}.{base}.cluster.local."))

    with open(os.path.join(a.out, "cluster.json"), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, separators=(",", ":"))

    soa = "ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"
    with open(os.path.join(a.out, "cluster.local.zone"), "w") as f:
        f.write(f"$ORIGIN cluster.local.\n$TTL {TTL}\n@ SOA {soa}\n@ NS ns.dns\nns.dns A 127.0.0.1\n")
        f.write("dns-version TXT \"1.1.0\"\n")
        for owner, rtype, data in records:
            f.write(f"{owner} {rtype} {data}\n")
    with open(os.path.join(a.out, "10.in-addr.arpa.zone"), "w") as f:
        f.write(f"$ORIGIN 10.in-addr.arpa.\n$TTL {TTL}\n@ SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5\n@ NS ns.dns.cluster.local.\n")
        for owner, target in ptrs:
            f.write(f"{owner} PTR {target}\n")

    mix = [(60, "a"), (10, "aaaa"), (10, "srv"), (10, "headless"), (5, "ptr"), (5, "nx")]
    kinds = [k for w, k in mix for _ in range(w)]
    with open(os.path.join(a.out, "queries.txt"), "w") as f:
        for q in range(a.queries):
            kind = rng.choice(kinds)
            name, ns = rng.choice(services)
            if kind == "a":
                f.write(f"{name}.{ns}.svc.cluster.local A\n")
            elif kind == "aaaa":
                f.write(f"{name}.{ns}.svc.cluster.local AAAA\n")
            elif kind == "srv":
                f.write(f"_http._tcp.{name}.{ns}.svc.cluster.local SRV\n")
            elif kind == "headless" and headless:
                h, hns = rng.choice(headless)
                f.write(f"{h}.{hns}.svc.cluster.local A\n")
            elif kind == "ptr":
                owner, _ = rng.choice(ptrs)
                f.write(f"{owner}.10.in-addr.arpa PTR\n")
            else:
                f.write(f"missing-{q}.{ns}.svc.cluster.local A\n")
    print(f"{len(items)} objects, {len(records)} records, {len(ptrs)} PTRs, {a.queries} queries in {a.out}")


if __name__ == "__main__":
    main()
