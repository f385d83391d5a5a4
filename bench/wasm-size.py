#!/usr/bin/env python3
"""The release wasm's size, split by route: the main module every page loads, then what
each lazy page adds (gzip -9 as served). Usage: python3 bench/wasm-size.py target/site/pkg"""
import gzip, json, os, sys
pkg = sys.argv[1]
def size(name):
    data = open(os.path.join(pkg, name + ".wasm"), "rb").read()
    return len(data), len(gzip.compress(data, 9))
raw, gz = size("swell")
print(f"swell.wasm (every page): {raw:,} B raw, {gz:,} B gzip -9")
path = os.path.join(pkg, "__wasm_split_manifest.json")
if not os.path.exists(path):
    sys.exit("no __wasm_split_manifest.json: build with `cargo leptos build --release --split`")
splits = json.load(open(path))
worst = 0
for split, files in sorted(splits.items()):
    r = sum(size(f)[0] for f in files)
    g = sum(size(f)[1] for f in files)
    worst = max(worst, gz + g)
    name = split.strip("_").rsplit("_", 1)[0].removesuffix("_view")
    print(f"  {name:<22} +{r:>9,} B raw, +{g:>7,} B gzip -9 -> page total {raw + r:>9,} B raw, {gz + g:>7,} B gzip")
every = sorted(f[:-5] for f in os.listdir(pkg) if f.endswith(".wasm"))
print(f"all {len(every)} wasm files: {sum(size(f)[0] for f in every):,} B raw, {sum(size(f)[1] for f in every):,} B gzip -9")
print(f"largest first download of a page (main + its chunks): {worst:,} B gzip -9 ({worst / 1024:.0f} KiB)")
