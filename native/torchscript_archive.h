// Telling a TorchScript archive from the other files people pass as "best_model.pth", before LibTorch
// answers with a less helpful message.
#pragma once

#include <cstdint>
#include <string>

namespace torchnode {

// Checks that `path` is a TorchScript archive this LibTorch can read; returns its file format version.
// Throws Error: ERR_MODEL_NOT_FOUND, ERR_NOT_TORCHSCRIPT (a checkpoint, a pickle, not a zip), ERR_LIBTORCH_TOO_OLD,
// ERR_MODEL_CORRUPT.
uint64_t CheckTorchScriptArchive(const std::string& path);

// The same for a file's contents in memory; `name` says what they are in messages.
uint64_t CheckTorchScriptBytes(const std::string& bytes, const std::string& name);

// Whether LibTorch's message says the archive's code uses what this LibTorch does not know (an operator, a type).
bool IsUnknownToThisLibTorch(const std::string& text);

}  // namespace torchnode
