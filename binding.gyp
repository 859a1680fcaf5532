# The same addon as CMakeLists.txt, built by node-gyp: `npm run build:gyp` (scripts/build-gyp.mjs).
# LibTorch is found by scripts/find-libtorch.mjs, exactly as for the cmake-js build.
{
  "targets": [
    {
      "target_name": "torch_node",
      "sources": [
        "native/addon.cc",
        "native/async_workers.cc",
        "native/blas.cc",
        "native/forward_args.cc",
        "native/inference_job.cc",
        "native/inference_thread.cc",
        "native/js_promises.cc",
        "native/js_tensors.cc",
        "native/native_model.cc",
        "native/runtime.cc",
        "native/script_model.cc",
        "native/tensor_types.cc",
        "native/torch_dtypes.cc",
        "native/torch_errors.cc",
        "native/torch_log.cc",
        "native/torchscript_archive.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.mjs --gyp include_dirs)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "<!@(node scripts/find-libtorch.mjs --gyp defines)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": [
        "<!@(node scripts/find-libtorch.mjs --gyp cflags_cc)",
        "-fexceptions", "-frtti", "-fvisibility=hidden", "-Wno-unused-parameter"
      ],
      "ldflags": ["<!@(node scripts/find-libtorch.mjs --gyp ldflags)"],
      "libraries": ["<!@(node scripts/find-libtorch.mjs --gyp libraries)"]
    },
    {
      "target_name": "torch_node_memory",
      "sources": ["native/memory/memory.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-fvisibility=hidden", "-Wno-unused-parameter"]
    }
  ]
}
