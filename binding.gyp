{
  "targets": [
    {
      "target_name": "collectives",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/communicator.cc",
        "native/communicator_device.cc",
        "native/communicator_monitored.cc",
        "native/communicator_device_quantized.cc",
        "native/diagnostics.cc",
        "native/reduce_ops.cc",
        "native/work_queue.cc",
        "native/ops/elementwise.cc",
        "native/ops/ops_exports.cc",
        "native/gloo/gloo_backend.cc",
        "native/gloo/sync_collectives.cc",
        "native/mpi/mpi_api.cc",
        "native/mpi/mpi_backend.cc",
        "native/mpi/mpi_exports.cc",
        "native/mpi/mpi_runtime.cc",
        "native/gpu/cuda_api.cc",
        "native/gpu/device_buffer.cc",
        "native/gpu/device_ops.cc",
        "native/gpu/dynamic_library.cc",
        "native/gpu/kernels_api.cc",
        "native/gpu/nccl_api.cc",
        "native/gpu/nccl_backend.cc",
        "native/gpu/nccl_completion.cc",
        "native/gpu/device_quant_engine.cc",
        "native/gpu/device_scratch.cc",
        "native/gpu/nccl_init.cc",
        "native/store/tcp_store.cc",
        "native/quant/codec.cc",
        "native/quant/communicator_quantized.cc",
        "native/quant/host_quant_engine.cc",
        "native/quant/quant_args.cc",
        "native/quant/quant_exports.cc",
        "native/quant/quantized_ops.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-Wl,-z,nodelete"],
      "libraries": ["-lgloo", "-lpthread", "-ldl"]
    }
  ]
}
