{
  "variables": { "tfjs_node_dir%": "" },
  "targets": [
    {
      "target_name": "antifragile_kernels",
      "sources": ["conv_pool.cc", "batch_norm.cc"],
      "include_dirs": ["<(tfjs_node_dir)/deps/include"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": [
        "-L<(tfjs_node_dir)/deps/lib",
        "-l:libtensorflow_framework.so.2",
        "-Wl,-rpath,'$$ORIGIN/../../deps/lib'"
      ]
    }
  ]
}
