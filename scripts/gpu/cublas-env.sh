# cublas-env.sh, sourced with a binary from build.sh as $1: finds cuBLAS on a GPU machine (the
# toolkit's, else the pip package's) and puts it on LD_LIBRARY_PATH under the soname the binary
# asks for.
cublas=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | grep -v Lt | head -1)
[ -n "$cublas" ] || cublas=$(find / -xdev -name 'libcublas.so.1[0-9]' 2>/dev/null | head -1)
want=$(readelf -d "$1" | sed -n 's/.*NEEDED.*\[\(libcublas[^]]*\)\].*/\1/p')
cublas_lib=$(mktemp -d)
ln -sf "$cublas" "$cublas_lib/$want"
export LD_LIBRARY_PATH=$cublas_lib:$(dirname "$cublas"):${LD_LIBRARY_PATH:-}
echo "cuBLAS: $cublas (as $want)"
