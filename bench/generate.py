#!/usr/bin/env python3
"""A synthetic cluster, generated deterministically, in the three forms the benchmark serves it.
Objects are shaped as `kubectl get ... -o json` prints them from a real cluster: pods with full
specs, statuses, conditions and owner references (~1.9 KB each), services and EndpointSlices with
labels, annotations, owner references and targetRefs, managedFields on every tenth object. As in
a real cluster every pod is a ready endpoint of a service: most services have a few pods, a few
have hundreds (a Pareto spread), slices hold at most 100 endpoints, one service in 20 is
dual-stack (its pods too, with IPv6 slices), and 40 % of the headless services are
StatefulSet-like, their endpoints named by hostname.

- cluster.json: the `kubectl get ... -o json` List kubernetai reads (`manifests`);
- cluster.local.zone, 10.in-addr.arpa.zone and d.f.ip6.arpa.zone: the same names as static zones
  for knot and NSD, record for record what kubernetai answers with `pods verified` (service A
  and AAAA, SRV, every endpoint's name, every pod's dashed name, PTRs of every cluster IP and
  endpoint);
- queries.txt: a dnsperf query file with the mix of a cluster's traffic: A for services ~60 %,
  AAAA NODATA ~10 %, SRV ~10 %, headless A ~10 %, PTR ~5 %, NXDOMAIN ~5 %.

Usage: generate.py OUT_DIR [--services N] [--headless N] [--pods N] [--namespaces N] [--dual-stack-every N] [--queries N]
"""

import argparse
import ipaddress
import json
import os
import random
import zlib

TTL = 5


def ip(base, i):
    """The i-th address of a /16 (base "10.96"), skipping .0 and .255."""
    return f"{base}.{i // 254 % 256}.{i % 254 + 1}"


NODES = 40
# The IPv6 prefixes of dual-stack pods and cluster IPs: fd00:10::/64 and fd00:96::/64.
FD00_10 = int(ipaddress.IPv6Address("fd00:10::"))
FD00_96 = int(ipaddress.IPv6Address("fd00:96::"))


def uid(kind, i):
    """A stable UUID-shaped uid, as the API server assigns."""
    h = f"{zlib.crc32(f'{kind}/{i}'.encode()):08x}{zlib.crc32(f'{i}/{kind}'.encode()):08x}{i:016x}"
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def stamp(i):
    return f"2026-11-{1 + i % 24:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"


def managed_fields(manager, i):
    """The managedFields kubectl prints: verbose, and useless to DNS."""
    return [{"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": manager, "operation": "Update",
             "time": stamp(i), "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                                          "f:spec": {"f:ports": {".": {}}, "f:selector": {}},
                                          "f:status": {"f:conditions": {".": {}}}}}]


def pod_object(i, ns, addr, app):
    """A Pod as `kubectl get pods -o json` prints one from a Deployment's ReplicaSet (~1.9 KB)."""
    rs = f"{app}-{i % 97:05x}a7f9"
    node = f"node-{i % NODES}"
    meta = {"name": f"pod-{i}", "namespace": ns, "generateName": f"{rs}-", "uid": uid("pod", i),
            "resourceVersion": str(100000 + i), "creationTimestamp": stamp(i),
            "labels": {"app": app, "pod-template-hash": f"{i % 97:05x}a7f9", "tier": "backend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": stamp(i + 1),
                            "prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid("rs", i % 97),
                                 "controller": True, "blockOwnerDeletion": True}]}
    if i % 10 == 0:
        meta["managedFields"] = managed_fields("kube-controller-manager", i)
    spec = {"containers": [{"name": app, "image": f"registry.example/{app}:1.{i % 7}.3",
                            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                            "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent"}],
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "nodeName": node, "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0, "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
            "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}]}
    conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp(i)}
             for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    status = {"phase": "Running", "conditions": conds, "hostIP": f"192.168.{i % NODES // 250}.{i % NODES + 1}",
              "hostIPs": [{"ip": f"192.168.{i % NODES // 250}.{i % NODES + 1}"}], "podIP": addr, "podIPs": [{"ip": addr}],
              "qosClass": "Burstable", "startTime": stamp(i),
              "containerStatuses": [{"name": app, "ready": True, "restartCount": i % 3, "started": True,
                                     "image": f"registry.example/{app}:1.{i % 7}.3",
                                     "imageID": f"registry.example/{app}@sha256:{uid('img', i % 7).replace('-', '')}",
                                     "containerID": f"containerd://{uid('c', i).replace('-', '')}",
                                     "lastState": {}, "state": {"running": {"startedAt": stamp(i)}}}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def service_object(i, name, ns, spec):
    meta = {"name": name, "namespace": ns, "uid": uid("svc", i), "resourceVersion": str(200000 + i),
            "creationTimestamp": stamp(i), "labels": {"app": name, "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns}}
    if i % 10 == 0:
        meta["managedFields"] = managed_fields("helm", i)
    full = {"ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
            "selector": {"app": name}, "sessionAffinity": "None", **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": full, "status": {"loadBalancer": {}}}


def slice_object(i, name, ns, part, family, endpoints):
    """EndpointSlice `part` of service `name`: `endpoints` are (address, hostname, pod name),
    at most 100, as the EndpointSlice controller cuts them."""
    meta = {"name": f"{name}-{part}", "generateName": f"{name}-", "namespace": ns, "uid": uid("eps", i * 1000 + part),
            "resourceVersion": str(300000 + i), "creationTimestamp": stamp(i),
            "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": stamp(i + 2)},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": uid("svc", i),
                                 "controller": True, "blockOwnerDeletion": True}]}
    if i % 10 == 0:
        meta["managedFields"] = managed_fields("kube-controller-manager", i)
    eps = []
    for k, (addr, hostname, pod) in enumerate(endpoints):
        e = {"addresses": [addr], "conditions": {"ready": True, "serving": True, "terminating": False},
             "nodeName": f"node-{(i + k) % NODES}", "zone": f"zone-{(i + k) % 3}",
             "targetRef": {"kind": "Pod", "name": pod, "namespace": ns, "uid": uid("pod", zlib.crc32(pod.encode()))}}
        if hostname:
            e["hostname"] = hostname
        eps.append(e)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": family, "metadata": meta,
            "endpoints": eps, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}


def dashed(addr):
    """An address as an endpoint or pod name label: dots or colons made dashes."""
    if ":" in addr:
        text = addr.replace(":", "-")
        return text + "0" if text.endswith("-") else text
    return addr.replace(".", "-")


def reverse_owner(addr):
    """The reverse name of `addr`, relative to its reverse zone (10.in-addr.arpa, or
    d.f.ip6.arpa for fd00::/8)."""
    if ":" in addr:
        nibbles = ipaddress.IPv6Address(addr).exploded.replace(":", "")
        return ".".join(reversed(nibbles[2:]))
    o = addr.split(".")
    return f"{o[3]}.{o[2]}.{o[1]}"


def spread(total, counts_min, weights):
    """`total` split over len(weights) shares, each at least `counts_min`, the rest in proportion
    to `weights` (largest remainders), so the shares sum to `total` exactly."""
    n = len(weights)
    rest = total - counts_min * n
    wsum = sum(weights)
    exact = [rest * w / wsum for w in weights]
    shares = [counts_min + int(x) for x in exact]
    left = total - sum(shares)
    for j in sorted(range(n), key=lambda j: exact[j] - int(exact[j]), reverse=True)[:left]:
        shares[j] += 1
    return shares


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--services", type=int, default=5000, help="services with a cluster IP")
    p.add_argument("--headless", type=int, default=500)
    p.add_argument("--pods", type=int, default=10000, help="pods, every one an endpoint of a service")
    p.add_argument("--namespaces", type=int, default=50)
    p.add_argument("--dual-stack-every", type=int, default=20, help="every Nth cluster-IP service is dual-stack")
    p.add_argument("--queries", type=int, default=100000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    items = [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": f"ns-{n}", "uid": uid("ns", n), "resourceVersion": str(n + 10), "creationTimestamp": stamp(n),
                           "labels": {"kubernetes.io/metadata.name": f"ns-{n}"}},
              "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}} for n in range(a.namespaces)]
    records = []  # (owner relative to cluster.local., type, data)
    ptrs = []  # (address, target)
    next_pod = [0]

    def pods_for(name, ns, n, app, statefulset, dual):
        """`n` new pods of a workload behind service `name`: (v4, v6 or None, hostname, pod name)."""
        out = []
        for k in range(n):
            i = next_pod[0]
            next_pod[0] += 1
            v4 = f"10.{100 + i // 64516}.{i // 254 % 254}.{i % 254 + 1}"
            v6 = str(ipaddress.IPv6Address(FD00_10 + i + 1)) if dual else None
            pod = f"{name}-{k}" if statefulset else f"{name}-{i % 97:05x}a7f9-{uid('p', i)[:5]}"
            obj = pod_object(i, ns, v4, app)
            obj["metadata"]["name"] = pod
            obj["metadata"]["labels"]["app"] = name
            if statefulset:
                obj["metadata"]["ownerReferences"][0].update(kind="StatefulSet", name=name)
                obj["spec"]["hostname"] = pod
                obj["spec"]["subdomain"] = name
            if v6:
                obj["status"]["podIPs"] = [{"ip": v4}, {"ip": v6}]
            items.append(obj)
            out.append((v4, v6, pod if statefulset else None, pod))
            # `pods verified`: the pod's own dashed names.
            records.append((f"{dashed(v4)}.{ns}.pod", "A", v4))
            if v6:
                records.append((f"{dashed(v6)}.{ns}.pod", "AAAA", v6))
        return out

    def slices(i, name, ns, endpoints):
        """The service's EndpointSlices: one family each, at most 100 endpoints each."""
        part = 0
        for family, pick in (("IPv4", 0), ("IPv6", 1)):
            eps = [(e[pick], e[2], e[3]) for e in endpoints if e[pick]]
            for start in range(0, len(eps), 100):
                items.append(slice_object(i, name, ns, part, family, eps[start:start + 100]))
                part += 1

    def endpoint_records(base, endpoints, srv_targets):
        for v4, v6, hostname, _ in endpoints:
            for addr in filter(None, (v4, v6)):
                label = hostname or dashed(addr)
                rtype = "AAAA" if ":" in addr else "A"
                records.append((f"{label}.{base}", rtype, addr))
                ptrs.append((addr, f"{label}.{base}.cluster.local."))
                if srv_targets is not None:
                    srv_targets.append(f"{label}.{base}")

    # Headless services first: 1-10 ready endpoints each, 40 % StatefulSet-like with hostnames.
    headless_sizes = [rng.randint(1, 10) for _ in range(a.headless)]
    cluster_ip_pods = a.pods - sum(headless_sizes)
    if cluster_ip_pods < a.services:
        raise SystemExit(f"{a.pods} pods cannot give {a.services} services one endpoint each after the headless ones")
    # Real clusters: most services have a few pods, a few have hundreds.
    sizes = spread(cluster_ip_pods, 1, [rng.paretovariate(1.3) for _ in range(a.services)])

    services = []
    for i in range(a.services):
        ns = f"ns-{i % a.namespaces}"
        name = f"svc-{i}"
        dual = a.dual_stack_every > 0 and i % a.dual_stack_every == 0
        cip = ip("10.96", i)
        cips = [cip] + ([str(ipaddress.IPv6Address(FD00_96 + i + 1))] if dual else [])
        services.append((name, ns))
        spec = {"type": "ClusterIP", "clusterIP": cip, "clusterIPs": cips,
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
        obj = service_object(i, name, ns, spec)
        if dual:
            obj["spec"].update(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack")
        items.append(obj)
        endpoints = pods_for(name, ns, sizes[i], name, False, dual)
        slices(i, name, ns, endpoints)
        base = f"{name}.{ns}.svc"
        for c in cips:
            records.append((base, "AAAA" if ":" in c else "A", c))
            ptrs.append((c, f"{base}.cluster.local."))
        # One SRV target, but CoreDNS weighs it as one of a record per cluster IP.
        weight = 100 // len(cips)
        records.append((base, "SRV", f"0 {weight} 80 {base}.cluster.local."))
        records.append((f"_http._tcp.{base}", "SRV", f"0 {weight} 80 {base}.cluster.local."))
        endpoint_records(base, endpoints, None)

    headless = []
    for h, n in enumerate(headless_sizes):
        i = a.services + h
        ns = f"ns-{h % a.namespaces}"
        name = f"hl-{h}"
        headless.append((name, ns))
        items.append(service_object(i, name, ns, {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}))
        endpoints = pods_for(name, ns, n, name, h % 5 < 2, False)
        slices(i, name, ns, endpoints)
        base = f"{name}.{ns}.svc"
        targets = []
        endpoint_records(base, endpoints, targets)
        weight = max(1, 100 // len(targets))
        for v4, _, _, _ in endpoints:
            records.append((base, "A", v4))
        for t in targets:
            records.append((base, "SRV", f"0 {weight} 80 {t}.cluster.local."))
            records.append((f"_http._tcp.{base}", "SRV", f"0 {weight} 80 {t}.cluster.local."))

    with open(os.path.join(a.out, "cluster.json"), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, separators=(",", ":"))

    soa = "ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"
    with open(os.path.join(a.out, "cluster.local.zone"), "w") as f:
        f.write(f"$ORIGIN cluster.local.\n$TTL {TTL}\n@ SOA {soa}\n@ NS ns.dns\nns.dns A 127.0.0.1\n")
        f.write("dns-version TXT \"1.1.0\"\n")
        for owner, rtype, data in records:
            f.write(f"{owner} {rtype} {data}\n")
    for zone, v6 in (("10.in-addr.arpa", False), ("d.f.ip6.arpa", True)):
        with open(os.path.join(a.out, f"{zone}.zone"), "w") as f:
            f.write(f"$ORIGIN {zone}.\n$TTL {TTL}\n@ SOA {soa}\n@ NS ns.dns.cluster.local.\n")
            for addr, target in ptrs:
                if (":" in addr) == v6:
                    f.write(f"{reverse_owner(addr)} PTR {target}\n")

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
                addr, _ = rng.choice(ptrs)
                zone = "d.f.ip6.arpa" if ":" in addr else "10.in-addr.arpa"
                f.write(f"{reverse_owner(addr)}.{zone} PTR\n")
            else:
                f.write(f"missing-{q}.{ns}.svc.cluster.local A\n")
    endpoints = sum(len(o["endpoints"]) for o in items if o["kind"] == "EndpointSlice")
    kinds_count = {}
    for o in items:
        kinds_count[o["kind"]] = kinds_count.get(o["kind"], 0) + 1
    print(f"{len(items)} objects ({kinds_count}), {endpoints} endpoints, {len(records)} records, {len(ptrs)} PTRs, "
          f"{a.queries} queries in {a.out}")


if __name__ == "__main__":
    main()
