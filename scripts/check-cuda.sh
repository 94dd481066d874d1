#!/usr/bin/env bash
# Compile every csrc/*.cu with nvcc for sm_80 and sm_90 (no GPU and no torch needed: the .cu files are torch-free),
# warnings as errors, and print each kernel's register/spill report from ptxas. Fails naming the file on any error;
# warns (without failing) when a kernel spills. NVCC=/path/to/nvcc overrides the compiler; VERBOSE=1 also dumps
# nvcc's raw output.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -n "${NVCC:-}" ]]; then
  nvcc="$NVCC"
elif command -v nvcc > /dev/null 2>&1; then
  nvcc="$(command -v nvcc)"
else
  nvcc=/usr/local/cuda/bin/nvcc
fi
if ! [[ -x "$nvcc" ]] && ! command -v "$nvcc" > /dev/null 2>&1; then
  echo "check-cuda: nvcc not found (tried '${nvcc}'; put nvcc on PATH or set NVCC=/path/to/nvcc)" >&2
  exit 1
fi
# Demangle kernel names for the report: cu++filt (next to nvcc or on PATH), else binutils' c++filt (the names are
# Itanium-mangled), else print them mangled.
filt=cat
for f in "$(dirname "$(command -v "$nvcc")")/cu++filt" cu++filt /usr/local/cuda/bin/cu++filt c++filt; do
  if command -v "$f" > /dev/null 2>&1; then
    filt="$f"
    break
  fi
done

shopt -s nullglob
sources=(csrc/*.cu)
if ((${#sources[@]} == 0)); then
  echo "check-cuda: no csrc/*.cu files to compile" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

flags=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -O3 -std=c++17 -Xptxas -v
  -Werror all-warnings -Xcompiler -Wall,-Wextra -I csrc)
echo "check-cuda: $("$nvcc" --version | tail -n 1) (${nvcc})"

failed=0
for src in "${sources[@]}"; do
  obj="$tmp/$(basename "$src" .cu).o"
  if ! log="$("$nvcc" "${flags[@]}" -c "$src" -o "$obj" 2>&1)"; then
    echo "$log"
    echo "FAIL $src: nvcc exited with an error (see above)" >&2
    failed=1
    continue
  fi
  [[ "${VERBOSE:-0}" == 1 ]] && echo "$log"
  # ptxas -v prints, per entry function: "Compiling entry function 'NAME' for 'sm_XX'", then
  # "N bytes stack frame, S bytes spill stores, L bytes spill loads", then "Used R registers, ...".
  # (The same lines also appear for non-entry device functions, which are ignored.)
  report="$(printf '%s\n' "$log" | awk '
    /Compiling entry function/ { split($0, q, "\047"); name = q[2]; arch = q[4]; entry = 1; next }
    /bytes spill stores/ && entry { st = $5; ld = $9; next }
    /Used [0-9]+ registers/ && entry {
      for (i = 1; i <= NF; i++) if ($i == "Used") regs = $(i + 1)
      print arch, regs, st, ld, name; entry = 0
    }')"
  if [[ -z "$report" ]]; then
    echo "OK   $src: compiled (no kernels)"
    continue
  fi
  kernels=0 max_regs=0 spilling=0
  while read -r arch regs st ld name; do
    pretty="$(printf '%s\n' "$name" | "$filt" | sed -e 's/^void //' -e 's/hpcgen::(anonymous namespace):://' \
      -e 's/(.*$//')"
    note=""
    if ((st > 0 || ld > 0)); then
      note="  <-- WARNING: spills ${st} B stores / ${ld} B loads"
      spilling=$((spilling + 1))
    fi
    printf '       %-6s %3s regs  %s%s\n' "$arch" "$regs" "$pretty" "$note"
    kernels=$((kernels + 1))
    ((regs > max_regs)) && max_regs=$regs
  done <<< "$report"
  if ((spilling > 0)); then
    echo "WARN $src: ${kernels} kernel builds (sm_80, sm_90), max ${max_regs} registers, ${spilling} spilling (see WARNING lines)" >&2
  else
    echo "OK   $src: ${kernels} kernel builds (sm_80, sm_90), max ${max_regs} registers, no spills"
  fi
done

if ((failed)); then
  echo "check-cuda: FAILED" >&2
  exit 1
fi
echo "check-cuda: all ${#sources[@]} CUDA sources compile for sm_80 and sm_90"
