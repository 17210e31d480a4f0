// The host-memory Device, and the geometry checks every Device shares. The host device keeps each
// rank's pools in 4096-byte-aligned host memory and emulates the device pool there too, so the GPU
// backend's thread world runs (and its load-back can be verified) on any CPU machine.
//
//   auto dev = make_host_device(geometry);
//   dev->load_back(0, slots);        // memcpy of the slots into device pages [0, slots.size())
//   dev->describe();                 // "host memory (no GPU)"
#pragma once

#include <memory>

#include "backend/device.h"

namespace hcsim {

std::unique_ptr<Device> make_host_device(const PoolGeometry& geometry);

// Throws std::invalid_argument naming the first field that no device can serve, e.g.
// "kv_page_bytes 1000 is not a multiple of 16 (load-back copies 16-byte words)".
void check_pool_geometry(const PoolGeometry& geometry);

}  // namespace hcsim
