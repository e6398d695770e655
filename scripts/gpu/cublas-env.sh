# cublas-env.sh, sourced with a binary from build.sh as $1: finds cuBLAS and cuBLASLt on a GPU
# machine (the toolkit's, else the pip package's) and puts them on LD_LIBRARY_PATH under the
# sonames the binary asks for.
cublas=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | grep -v Lt | head -1)
[ -n "$cublas" ] || cublas=$(find / -xdev -name 'libcublas.so.1[0-9]' 2>/dev/null | head -1)
cublas_lib=$(mktemp -d)
for want in $(readelf -d "$1" | sed -n 's/.*NEEDED.*\[\(libcublas[^]]*\)\].*/\1/p'); do
	case $want in
	libcublasLt*) lib=$(ls "$(dirname "$cublas")"/libcublasLt.so.* 2>/dev/null | head -1) ;;
	*) lib=$cublas ;;
	esac
	ln -sf "$lib" "$cublas_lib/$want"
done
export LD_LIBRARY_PATH=$cublas_lib:$(dirname "$cublas"):${LD_LIBRARY_PATH:-}
echo "cuBLAS: $cublas, $(ls "$cublas_lib" | tr '\n' ' ')"
