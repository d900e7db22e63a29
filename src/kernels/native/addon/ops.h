// What the ops' sources share: op registration and splitting a loop across the cores.
#ifndef ANTIFRAGILE_OPS_H_
#define ANTIFRAGILE_OPS_H_

#include <tensorflow/c/kernels.h>
#include <tensorflow/c/tf_status.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

namespace antifragile {

// One op definition (inputs, outputs and attributes as "name: type" specs) and its CPU kernel.
void RegisterOp(const char* name, std::initializer_list<const char*> inputs,
                std::initializer_list<const char*> outputs, std::initializer_list<const char*> attrs,
                void* (*create)(TF_OpKernelConstruction*),
                void (*compute)(void*, TF_OpKernelContext*), void (*destroy)(void*),
                TF_Status* status);

// Fails the kernel's call with an invalid-argument status and `message`.
void Fail(TF_OpKernelContext* ctx, const std::string& message);

// Registers batch_norm.cc's ops (status set on failure).
void RegisterBatchNormOps(TF_Status* status);

// Runs fn(begin, end) over [0, n), split across the cores; nothing for an empty range.
template <typename F>
void Split(int64_t n, const F& fn) {
  if (n <= 0) return;
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t count = std::min<int64_t>(cores, n);
  std::vector<std::thread> threads;
  for (int64_t t = 1; t < count; ++t) {
    threads.emplace_back([&fn, n, t, count] { fn(n * t / count, n * (t + 1) / count); });
  }
  fn(0, n / count);
  for (auto& th : threads) th.join();
}

}  // namespace antifragile

#endif  // ANTIFRAGILE_OPS_H_
