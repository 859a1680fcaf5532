#include "torchscript_archive.h"

#include <caffe2/serialize/inline_container.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "error.h"
#include "torch_errors.h"

namespace torchnode {

namespace {

bool StartsWith(const std::string& bytes, const char* prefix, size_t n) {
  return bytes.size() >= n && std::memcmp(bytes.data(), prefix, n) == 0;
}

const char kExportHint[] =
    "Export a TorchScript model with torch.jit.trace or torch.jit.script and save it with torch.jit.save "
    "(for the workshop's FoodClassifier checkpoints, this project's scripts/export_model.py --checkpoint FILE "
    "--class-mapping class_mapping.json --vocab vocab.txt --out DIR does it)";

}  // namespace

namespace {

// The checks on a file's first bytes and its zip records; `name` is the path, or what names the bytes.
template <typename MakeReader>
uint64_t CheckArchive(const std::string& head, const std::string& name, MakeReader make_reader) {
  if (head.empty()) Fail("ERR_NOT_TORCHSCRIPT", name + " is empty, not a TorchScript file");
  if (static_cast<unsigned char>(head[0]) == 0x80) {
    Fail("ERR_NOT_TORCHSCRIPT", name + " is a Python pickle in the legacy torch.save format (a checkpoint or " +
                                    "state_dict), not a TorchScript module. " + kExportHint);
  }
  if (!StartsWith(head, "PK\x03\x04", 4)) {
    Fail("ERR_NOT_TORCHSCRIPT", name + " is not a TorchScript file (TorchScript files are zip archives)");
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader = make_reader();
    if (reader.hasRecord("data.pkl") && !reader.hasRecord("constants.pkl")) {
      Fail("ERR_NOT_TORCHSCRIPT", name + " is a checkpoint saved with torch.save (such as a state_dict, or a dict " +
                                      "holding model_state_dict), not a TorchScript module. " + kExportHint);
    }
    return reader.version();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string text = MessageOf(e);
    if (text.find("maximum supported version") != std::string::npos) {
      Fail("ERR_LIBTORCH_TOO_OLD",
           name + " was saved by a newer PyTorch than this addon's LibTorch " + LibTorchVersion() + " can read (" +
               Summarize(text) + "). Rebuild the addon against a newer LibTorch (LIBTORCH_DIR or TORCH_PYTHON)",
           text);
    }
    Fail("ERR_MODEL_CORRUPT", "Cannot read " + name + " (truncated or corrupt?): " + Summarize(text), text);
  }
}

}  // namespace

uint64_t CheckTorchScriptArchive(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) Fail("ERR_MODEL_NOT_FOUND", "Model file not found: " + path);
  if (!S_ISREG(st.st_mode)) Fail("ERR_MODEL_NOT_FOUND", "Model path is not a regular file: " + path);
  std::ifstream in(path, std::ios::binary);
  std::string head(4, '\0');
  in.read(&head[0], 4);
  head.resize(static_cast<size_t>(in.gcount()));
  return CheckArchive(head, path, [&path] { return caffe2::serialize::PyTorchStreamReader(path); });
}

uint64_t CheckTorchScriptBytes(const std::string& bytes, const std::string& name) {
  std::istringstream in(bytes);
  return CheckArchive(bytes.substr(0, 4), name, [&in] { return caffe2::serialize::PyTorchStreamReader(&in); });
}

bool IsUnknownToThisLibTorch(const std::string& text) {
  for (const char* marker : {"Unknown builtin op", "Unknown type name", "Unknown attribute", "unknown builtin op",
                             "Could not find schema", "is not a member of"}) {
    if (text.find(marker) != std::string::npos) return true;
  }
  return false;
}

}  // namespace torchnode
