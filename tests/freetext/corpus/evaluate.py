#!/usr/bin/env python3
"""Score IoC extractors against corpus ground truth.

(Cairn's copy of the research kit's scorer: adds the `chrome-extension-id` type to the family map and
the --min-* thresholds CI uses; scoring is otherwise unchanged.)

Tools: misp (MISP ComplexTypeTool via PHP harness, TLDs from IANA warninglist),
       misp_nowl (same, built-in fallback TLD list), iocextract, ioc-finder.
Usage:
  python3 evaluate.py --cmd 'COMMAND'   score a command that reads report text on stdin and prints a JSON
                                         array of {"value": ..., "type": <MISP attribute type>} on stdout
  python3 evaluate.py --tools iocextract,ioc-finder   score the peer extractors (pip install them first)
The MISP baselines in eval_table.txt were produced by running MISP's own ComplexTypeTool (PHP) out of tree.

Scoring (per document, per tool):
  * extracted values are normalised and mapped to a 'family'
  * TP  = extracted (family,value) matching a required GT item
  * FN  = required GT item not extracted with the right family
  * FP  = extracted item matching no GT item (required or optional) and not 'derived'
          (derived = host of a GT url / domain of a GT email: neutral)
  * 'value-only' recall ignores the family (was the string found at all?)
"""
import json, os, re, subprocess, sys
from collections import Counter, defaultdict
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.environ.get('MISP_FREETEXT_HARNESS', '')  # optional PHP oracle, not shipped

DOCS = {
    'eset_xdspy': 'README.adoc',
    'eset_winnti_group': 'README.adoc',
    'eset_backdoordiplomacy': 'README.adoc',
    'avast_cacheflow': 'README.md',
    'avast_blustealer': 'README.md',
    'unit42_ta551_ursnif_2020-07-09': 'report.txt',
}


def norm(family, v):
    v = v.strip()
    if family in ('hash-md5', 'hash-sha1', 'hash-sha256', 'hash-sha512', 'domain', 'email', 'filename', 'chrome-ext', 'regkey', 'cve'):
        return v.lower().rstrip('.')
    if family == 'url':
        s = v
        if '://' not in s:
            s = 'http://' + s
        try:
            p = urlsplit(s)
            host = (p.hostname or '').lower()
            port = f':{p.port}' if p.port else ''
        except ValueError:
            return v.lower()
        rest = p.path + (('?' + p.query) if p.query else '')
        return (host + port + rest).rstrip('/')
    return v


MISP_FAMILY = {
    'md5': 'hash-md5', 'imphash': 'hash-md5', 'sha1': 'hash-sha1', 'sha256': 'hash-sha256', 'sha512': 'hash-sha512',
    'ip-dst': 'ip', 'ip-src': 'ip', 'ip-dst|port': 'ip', 'domain': 'domain', 'hostname': 'domain',
    'url': 'url', 'link': 'url', 'email-src': 'email', 'filename': 'filename', 'btc': 'btc',
    'vulnerability': 'cve', 'AS': 'asn', 'regkey': 'regkey', 'phone-number': 'phone', 'ssdeep': 'ssdeep',
    # Cairn's copy: MISP's type for Chrome extension ids (the original map lacks it, so correctly typed
    # ids scored as misses).
    'chrome-extension-id': 'chrome-ext',
}


def misp_typed_to_families(rows):
    res = []
    for r in rows:
        t = r.get('default_type') or r.get('type')
        v = r['value']
        if t.startswith('filename|') and '|' in v:
            fn, h = v.split('|', 1)
            res.append(('filename', fn, t))
            res.append((MISP_FAMILY.get(t.split('|')[1], 'hash-other'), h, t))
        elif t in ('ip-dst|port', 'ip-src|port', 'hostname|port') and '|' in v:
            fam = 'ip' if t.startswith('ip') else 'domain'
            res.append((fam, v.split('|')[0], t))
        elif t == 'domain|ip' and '|' in v:
            d, i = v.split('|', 1)
            res.append(('domain', d, t))
            res.append(('ip', i, t))
        else:
            res.append((MISP_FAMILY.get(t, t), v, t))
    return res


def run_cmd(text, cmd):
    out = subprocess.run(cmd, shell=True, input=text.encode(), capture_output=True, check=True).stdout
    return misp_typed_to_families(json.loads(out))


def run_misp(text, nowl=False):
    args = ['php', HARNESS, '-'] + (['--no-wl'] if nowl else [])
    out = subprocess.run(args, input=text.encode(), capture_output=True, check=True).stdout
    res = []
    for r in json.loads(out):
        t, v = r['default_type'], r['value']
        if t.startswith('filename|'):
            fn, h = v.split('|', 1)
            res.append(('filename', fn, t))
            res.append((MISP_FAMILY.get(t.split('|')[1], 'hash-other'), h, t))
        elif t == 'ip-dst|port':
            res.append(('ip', v.split('|')[0], t))
        else:
            res.append((MISP_FAMILY.get(t, t), v, t))
    return res


def run_iocextract(text):
    import iocextract as ie
    res = []
    res += [('url', u, 'url') for u in ie.extract_urls(text, refang=True)]
    res += [('ip', i, 'ipv4') for i in ie.extract_ipv4s(text, refang=True)]
    res += [('ip', i, 'ipv6') for i in ie.extract_ipv6s(text)]
    res += [('email', e, 'email') for e in ie.extract_emails(text, refang=True)]
    res += [('hash-md5', h, 'md5') for h in ie.extract_md5_hashes(text)]
    res += [('hash-sha1', h, 'sha1') for h in ie.extract_sha1_hashes(text)]
    res += [('hash-sha256', h, 'sha256') for h in ie.extract_sha256_hashes(text)]
    res += [('hash-sha512', h, 'sha512') for h in ie.extract_sha512_hashes(text)]
    return res


def run_iocfinder(text):
    from ioc_finder import find_iocs
    fam = {'urls': 'url', 'domains': 'domain', 'ipv4s': 'ip', 'ipv6s': 'ip', 'email_addresses': 'email',
           'md5s': 'hash-md5', 'sha1s': 'hash-sha1', 'sha256s': 'hash-sha256', 'sha512s': 'hash-sha512',
           'cves': 'cve', 'bitcoin_addresses': 'btc', 'monero_addresses': 'crypto-other', 'asns': 'asn',
           'ssdeeps': 'ssdeep'}
    r = find_iocs(text, included_ioc_types=list(fam))
    res = []
    for k, vals in r.items():
        if isinstance(vals, dict):
            continue
        for v in vals:
            res.append((fam[k], v, k))
    return res


TOOLS = {
    'misp': lambda t: run_misp(t),
    'misp_nowl': lambda t: run_misp(t, nowl=True),
    'iocextract': run_iocextract,
    'ioc-finder': run_iocfinder,
}


def score(doc, textfile, tool):
    text = open(os.path.join(HERE, doc, textfile), encoding='utf-8').read()
    gt = json.load(open(os.path.join(HERE, doc, 'ground_truth.json')))['items']
    req = {(g['family'], norm(g['family'], g['value'])) for g in gt if g['required']}
    opt = {(g['family'], norm(g['family'], g['value'])) for g in gt if not g['required']}
    any_val = {norm(g['family'], g['value']).lower() for g in gt}
    derived = set()
    for g in gt:
        if g['family'] == 'url':
            try:
                h = urlsplit(g['value'] if '://' in g['value'] else 'http://' + g['value']).hostname
            except ValueError:
                h = None
            if h:
                derived.add(('domain', h.lower()))
        if g['family'] == 'email':
            derived.add(('domain', g['value'].split('@')[1].lower()))
        if g['family'] == 'domain':
            # a URL consisting of just a GT domain is also acceptable
            derived.add(('url', g['value'].lower()))
    extracted = {(f, norm(f, v)) for f, v, _ in TOOLS[tool](text)}
    tp = extracted & req
    fn = req - extracted
    # value-level precision: an extracted value that equals ANY ground-truth value (any family) is not a FP;
    # a wrong family is still penalised through typed recall (FN)
    all_vals = {v.lower() for _, v in req | opt}
    fp = {e for e in extracted if e not in req and e not in opt and e not in derived and e[1].lower() not in all_vals}
    # value-only recall (family ignored)
    ext_vals = {v.lower() for _, v in extracted}
    val_found = {r for r in req if r[1].lower() in ext_vals}
    fam = defaultdict(Counter)
    for f, _ in req:
        fam[f]['gt'] += 1
    for f, _ in tp:
        fam[f]['tp'] += 1
    for f, _ in fp:
        fam[f]['fp'] += 1
    return {
        'tp': len(tp), 'fn': len(fn), 'fp': len(fp), 'gt': len(req),
        'value_recall': len(val_found) / len(req) if req else None,
        'per_family': {k: dict(v) for k, v in fam.items()},
        'fn_examples': sorted(fn)[:8], 'fp_examples': sorted(fp)[:12],
    }


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cmd', help='command: text on stdin -> JSON [{value, type}] on stdout')
    ap.add_argument('--tools', default='', help='comma-separated peer tools: iocextract, ioc-finder, misp (needs MISP_FREETEXT_HARNESS)')
    ap.add_argument('--out', default='', help='write per-document details as JSON to this file')
    ap.add_argument('--corpus', default='', help='another corpus: a folder of documents, each a folder with report.txt and ground_truth.json')
    ap.add_argument('--min-recall', type=float, default=None, help="(Cairn) fail unless --cmd's total typed recall reaches this")
    ap.add_argument('--min-precision', type=float, default=None, help="(Cairn) fail unless --cmd's total precision reaches this")
    ap.add_argument('--min-doc-recall', type=float, default=None, help="(Cairn) fail unless --cmd's typed recall reaches this on every document")
    args = ap.parse_args()
    global HERE
    if args.corpus:
        HERE = os.path.abspath(args.corpus)
        DOCS.clear()
        DOCS.update({d: 'report.txt' for d in sorted(os.listdir(HERE)) if os.path.isfile(os.path.join(HERE, d, 'ground_truth.json'))})
    tools = [t for t in args.tools.split(',') if t]
    if args.cmd:
        TOOLS['cmd'] = lambda t: run_cmd(t, args.cmd)
        tools.append('cmd')
    if not tools:
        ap.error('give --cmd or --tools')
    results = {}
    for doc, tf in DOCS.items():
        for tool in tools:
            results[f'{doc}::{tool}'] = score(doc, tf, tool)
    if args.out:
        json.dump(results, open(args.out, 'w'), indent=1, default=list)
    # table
    print(f"{'document':34} {'tool':11} {'GT':>4} {'TP':>4} {'FN':>4} {'FP':>4} {'P':>6} {'R':>6} {'R(val)':>6}")
    tot = defaultdict(Counter)
    for k, r in results.items():
        doc, tool = k.split('::')
        p = r['tp'] / (r['tp'] + r['fp']) if (r['tp'] + r['fp']) else 0
        rc = r['tp'] / r['gt'] if r['gt'] else 0
        print(f"{doc:34} {tool:11} {r['gt']:4} {r['tp']:4} {r['fn']:4} {r['fp']:4} {p:6.2f} {rc:6.2f} {r['value_recall']:6.2f}")
        for x in ('tp', 'fn', 'fp', 'gt'):
            tot[tool][x] += r[x]
    print()
    for tool, c in tot.items():
        p = c['tp'] / (c['tp'] + c['fp']) if (c['tp'] + c['fp']) else 0
        rc = c['tp'] / c['gt']
        f1 = 2 * p * rc / (p + rc) if p + rc else 0
        print(f"TOTAL {tool:11} GT={c['gt']} TP={c['tp']} FN={c['fn']} FP={c['fp']} P={p:.3f} R={rc:.3f} F1={f1:.3f}")
    # Cairn: thresholds for CI.
    failures = []
    if 'cmd' in tot:
        c = tot['cmd']
        p = c['tp'] / (c['tp'] + c['fp']) if (c['tp'] + c['fp']) else 0
        rc = c['tp'] / c['gt']
        if args.min_recall is not None and rc < args.min_recall:
            failures.append(f'total recall {rc:.3f} < {args.min_recall}')
        if args.min_precision is not None and p < args.min_precision:
            failures.append(f'total precision {p:.3f} < {args.min_precision}')
        for k, r in results.items():
            doc, tool = k.split('::')
            rc = r['tp'] / r['gt'] if r['gt'] else 1
            if tool == 'cmd' and args.min_doc_recall is not None and rc < args.min_doc_recall:
                failures.append(f'{doc}: recall {rc:.3f} < {args.min_doc_recall} (missed: {r["fn_examples"]})')
    for f in failures:
        print(f'FAIL {f}', file=sys.stderr)
    if failures:
        sys.exit(1)


if __name__ == '__main__':
    main()
