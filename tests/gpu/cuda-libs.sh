# Sourced by the GPU scripts: puts the directories holding NVRTC (which cubecl-cuda loads at run
# time), NCCL and cuBLAS (CUBEK_MATMUL=cublas) on LD_LIBRARY_PATH, wherever the GPU machine's CUDA
# or PyTorch installed them.
cuda_lib_dirs=$(find / -xdev \( -name 'libnvrtc.so*' -o -name 'libnvrtc-builtins.so*' -o -name 'libnccl.so*' -o -name 'libcublas.so*' -o -name 'libcublasLt.so*' \) -printf '%h\n' 2>/dev/null | grep -v /stubs | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$cuda_lib_dirs"
