# Sourced by the GPU scripts: puts the directories holding NVRTC (which cubecl-cuda loads at run
# time) and NCCL on LD_LIBRARY_PATH, wherever the GPU machine's CUDA or PyTorch installed them.
cuda_lib_dirs=$(find / -xdev \( -name 'libnvrtc.so*' -o -name 'libnvrtc-builtins.so*' -o -name 'libnccl.so*' \) -printf '%h\n' 2>/dev/null | grep -v /stubs | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$cuda_lib_dirs"
