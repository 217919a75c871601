#!/usr/bin/env python3
"""A synthetic cluster, generated deterministically, in the three forms the benchmark serves it.
Objects are shaped as `kubectl get ... -o json` prints them from a real cluster: pods with full
specs, statuses, conditions and owner references (~1.9 KB each), services and EndpointSlices with
labels, annotations, owner references and targetRefs, managedFields on every tenth object.

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
import zlib

TTL = 5


def ip(base, i):
    """The i-th address of a /16 (base "10.96"), skipping .0 and .255."""
    return f"{base}.{i // 254 % 256}.{i % 254 + 1}"


NODES = 40


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


def slice_object(i, name, ns, endpoints):
    meta = {"name": f"{name}-a", "generateName": f"{name}-", "namespace": ns, "uid": uid("eps", i),
            "resourceVersion": str(300000 + i), "creationTimestamp": stamp(i),
            "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": stamp(i + 2)},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": uid("svc", i),
                                 "controller": True, "blockOwnerDeletion": True}]}
    if i % 10 == 0:
        meta["managedFields"] = managed_fields("kube-controller-manager", i)
    eps = []
    for k, (addr, hostname) in enumerate(endpoints):
        e = {"addresses": [addr], "conditions": {"ready": True, "serving": True, "terminating": False},
             "nodeName": f"node-{(i + k) % NODES}", "zone": f"zone-{(i + k) % 3}",
             "targetRef": {"kind": "Pod", "name": f"{name}-{k}", "namespace": ns, "uid": uid("tr", i * 16 + k)}}
        if hostname:
            e["hostname"] = hostname
        eps.append(e)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4", "metadata": meta,
            "endpoints": eps, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}


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

    items = [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": f"ns-{n}", "uid": uid("ns", n), "resourceVersion": str(n + 10), "creationTimestamp": stamp(n),
                           "labels": {"kubernetes.io/metadata.name": f"ns-{n}"}},
              "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}} for n in range(a.namespaces)]
    records = []  # (owner relative to cluster.local., type, data)
    ptrs = []  # (reverse owner, target)
    pod_ips = []
    for i in range(a.pods):
        ns = f"ns-{i % a.namespaces}"
        addr = f"10.{100 + i // 64516}.{i // 254 % 254}.{i % 254 + 1}"
        pod_ips.append((ns, addr))
        items.append(pod_object(i, ns, addr, f"app-{i % 997}"))

    services = []
    for i in range(a.services):
        ns = f"ns-{i % a.namespaces}"
        name = f"svc-{i}"
        cip = ip("10.96", i)
        services.append((name, ns))
        items.append(service_object(i, name, ns, {"type": "ClusterIP", "clusterIP": cip, "clusterIPs": [cip],
                                                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}))
        # Two ready endpoints from the pods, as a real service has.
        eps = [pod_ips[(2 * i + k) % max(1, len(pod_ips))][1] for k in range(2)] if pod_ips else []
        items.append(slice_object(i, name, ns, [(e, None) for e in eps]))
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
        items.append(service_object(a.services + i, name, ns, {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                                                               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}))
        items.append(slice_object(a.services + i, name, ns, [(e, f"{name}-{k}") for k, e in enumerate(addrs)]))
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
