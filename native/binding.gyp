# The native addon: C++17 + node-addon-api, with the CUDA kernels compiled by nvcc when a toolkit is found
# (find-cuda.js) and a CPU-only addon otherwise. The CUDA runtime is linked statically and the driver and
# cuBLASLt are opened with dlopen, so the .node loads on machines without any CUDA library.
{
  'variables': {
    'cuda_home%': '<!(node find-cuda.js)',
    # sm_90 machine code for the H100; compute_80 PTX that the driver compiles for any other GPU from Ampere up.
    'cuda_gencode': ['-gencode', 'arch=compute_90,code=sm_90', '-gencode', 'arch=compute_80,code=compute_80'],
  },
  'targets': [{
    'target_name': 'cskv_native',
    'sources': [
      'src/addon.cc',
      'src/cublasLt.cc',
      'src/cudaDriver.cc',
      'src/deviceMemory.cc',
      'src/dynamicLibrary.cc',
      'src/engine/cacheLayout.cc',
      'src/engine/modelSpec.cc',
      'src/engineOps.cc',
      'src/jsErrors.cc',
      'src/kernelOps.cc',
      'src/probe.cc',
      'src/probeWorker.cc',
      'src/reference/fusedAttentionReference.cc',
      'src/reference/q4Reference.cc',
      'src/reference/q8Reference.cc',
    ],
    'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
    'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS'],
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++20'],
    'cflags_cc': ['-std=c++17', '-fexceptions', '-fvisibility=hidden', '-Wall', '-Wextra', '-Wno-unused-parameter'],
    'libraries': ['-ldl'],
    'conditions': [
      ['cuda_home!=""', {
        'defines': ['CSKV_WITH_CUDA=1', 'CSKV_CUDA_ARCHITECTURES="sm_90 compute_80(PTX)"'],
        'include_dirs': ['<(cuda_home)/include'],
        'sources': [
          'src/engine/deviceEngine.cc',
          'src/engine/gemm.cc',
          'src/kernelRunners.cc',
          'src/kernels/attention.cu',
          'src/kernels/bias.cu',
          'src/kernels/convert.cu',
          'src/kernels/embedding.cu',
          'src/kernels/fusedAttention.cu',
          'src/kernels/fusedPrefillAttention.cu',
          'src/kernels/kvCache.cu',
          'src/kernels/q4Linear.cu',
          'src/kernels/q8Linear.cu',
          'src/kernels/quantise.cu',
          'src/kernels/rmsNorm.cu',
          'src/kernels/rope.cu',
          'src/kernels/ropeTable.cu',
          'src/kernels/sampling.cu',
          'src/kernels/swiglu.cu',
        ],
        'libraries': ['<(cuda_home)/lib64/libcudart_static.a', '-lrt', '-lpthread'],
        'rules': [{
          'rule_name': 'nvcc',
          'extension': 'cu',
          # Headers every kernel may include: a change to one recompiles the kernels.
          'inputs': ['<!@(node -e "console.log(require(\'fs\').readdirSync(\'src/kernels\').filter(f=>/\\.(cuh|h)$/.test(f)).map(f=>\'src/kernels/\'+f).join(\' \'))")', 'src/cudaCheck.h', 'src/status.h', 'src/engine/cacheLayout.h'],
          'outputs': ['<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o'],
          'action': [
            '<(cuda_home)/bin/nvcc', '-std=c++17', '-O3', '--expt-relaxed-constexpr', '-Xcompiler', '-fPIC,-fvisibility=hidden',
            '-DCSKV_WITH_CUDA=1', '<@(cuda_gencode)', '-c', '<(RULE_INPUT_PATH)', '-o', '<@(_outputs)',
          ],
          'message': 'nvcc <(RULE_INPUT_PATH)',
          'process_outputs_as_sources': 1,
        }],
      }, {
        'sources': ['src/kernelRunnersUnavailable.cc', 'src/engine/deviceEngineUnavailable.cc'],
      }],
    ],
  }],
}
