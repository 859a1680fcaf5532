#include "forward_args.h"

#include <ATen/Functions.h>
#include <ATen/core/jit_type.h>

#include <cmath>
#include <sstream>

#include "error.h"
#include "torch_dtypes.h"

namespace torchnode {

namespace {

// "1 input (x)", "2 to 3 inputs (x, n, scale)"
std::string Takes(const c10::FunctionSchema& schema) {
  const size_t total = schema.arguments().size() - 1;
  size_t required = total;
  while (required > 0 && schema.arguments()[required].default_value()) --required;
  std::string names;
  for (size_t i = 1; i <= total; ++i) names += (i > 1 ? ", " : "") + schema.arguments()[i].name();
  const std::string count =
      required == total ? std::to_string(total) : std::to_string(required) + " to " + std::to_string(total);
  return count + (total == 1 ? " input" : " inputs") + " (" + names + ")";
}

at::Tensor ToTensor(const TensorView& view, const c10::Device& device) {
  static int64_t empty = 0;  // from_blob needs memory even for no elements
  void* data = view.byte_length > 0 ? const_cast<void*>(view.data) : &empty;
  at::Tensor t = at::from_blob(data, view.shape, at::TensorOptions().dtype(ToScalarType(view.dtype)));
  return device.is_cpu() ? t : t.to(device);
}

bool IsExactInteger(double v) { return std::isfinite(v) && v == std::floor(v) && std::fabs(v) <= kMaxSafeInteger; }

[[noreturn]] void Mismatch(const c10::TypePtr& type, const ArgValue& value, const std::string& where) {
  std::string received = ArgKindName(value.kind);
  if (value.kind == ArgValue::Kind::Number) {
    std::ostringstream n;
    n << value.number;
    received = "the number " + n.str();
  } else if (value.kind == ArgValue::Kind::Tensor) {
    received = std::string("a ") + DTypeName(value.tensor.dtype) + " tensor";
  }
  Fail("ERR_INVALID_ARGUMENT", "Expected " + type->annotation_str() + " for " + where + " but received " + received);
}

c10::IValue Convert(const c10::TypePtr& type, const ArgValue& value, const std::string& where,
                    const c10::Device& device) {
  using Kind = ArgValue::Kind;
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      if (value.kind == Kind::Tensor) return ToTensor(value.tensor, device);
      break;
    case c10::TypeKind::OptionalType:
      if (value.kind == Kind::None) return c10::IValue();
      return Convert(type->cast<c10::OptionalType>()->getElementType(), value, where, device);
    case c10::TypeKind::IntType:
      if (value.kind == Kind::Int) return value.integer;
      if (value.kind == Kind::Number && IsExactInteger(value.number)) return static_cast<int64_t>(value.number);
      break;
    case c10::TypeKind::FloatType:
      if (value.kind == Kind::Number) return value.number;
      if (value.kind == Kind::Int) return static_cast<double>(value.integer);
      break;
    case c10::TypeKind::NumberType:  // Scalar: an int where the number is one, as Python's 1 and 1.5
      if (value.kind == Kind::Number && IsExactInteger(value.number)) return static_cast<int64_t>(value.number);
      if (value.kind == Kind::Number) return value.number;
      if (value.kind == Kind::Int) return value.integer;
      if (value.kind == Kind::Bool) return value.boolean;
      break;
    case c10::TypeKind::BoolType:
      if (value.kind == Kind::Bool) return value.boolean;
      break;
    case c10::TypeKind::StringType:
      if (value.kind == Kind::String) return value.string;
      break;
    case c10::TypeKind::ListType:
      if (value.kind == Kind::List) {
        const c10::TypePtr element = type->cast<c10::ListType>()->getElementType();
        c10::impl::GenericList list(element);
        list.reserve(value.items.size());
        for (size_t i = 0; i < value.items.size(); ++i) {
          list.push_back(Convert(element, value.items[i], where + "[" + std::to_string(i) + "]", device));
        }
        return list;
      }
      break;
    default:
      Fail("ERR_INVALID_ARGUMENT", where + " has the type " + type->annotation_str() +
                                       ", which cannot be passed from JavaScript (tensors, int, float, bool, str, " +
                                       "lists of them and Optional can)");
  }
  Mismatch(type, value, where);
}

void CollectViews(const ArgValue& value, std::vector<TensorView>* out) {
  if (value.kind == ArgValue::Kind::Tensor) out->push_back(value.tensor);
  for (const ArgValue& item : value.items) CollectViews(item, out);
}

}  // namespace

std::vector<c10::IValue> ToForwardArgs(const c10::FunctionSchema& schema, const std::vector<ArgValue>& args,
                                       const c10::Device& device) {
  const std::vector<c10::Argument>& params = schema.arguments();  // params[0] is self
  const size_t total = params.size() - 1;
  size_t required = total;
  while (required > 0 && params[required].default_value()) --required;
  if (args.size() > total || args.size() < required) {
    Fail("ERR_INVALID_ARGUMENT", "The model takes " + Takes(schema) + " but received " + std::to_string(args.size()));
  }
  std::vector<c10::IValue> out;
  out.reserve(total);
  for (size_t i = 0; i < total; ++i) {
    const c10::Argument& param = params[i + 1];
    const std::string where = "inputs[" + std::to_string(i) + "] (" + param.name() + ")";
    if (i >= args.size() || args[i].kind == ArgValue::Kind::Missing) {
      if (!param.default_value()) Fail("ERR_INVALID_ARGUMENT", "Expected a value for " + where + " but received none");
      out.push_back(*param.default_value());
      continue;
    }
    out.push_back(Convert(param.type(), args[i], where, device));
  }
  return out;
}

std::vector<ArgumentInfo> DescribeArguments(const c10::FunctionSchema& schema) {
  std::vector<ArgumentInfo> out;
  for (size_t i = 1; i < schema.arguments().size(); ++i) {
    const c10::Argument& a = schema.arguments()[i];
    ArgumentInfo info;
    info.name = a.name();
    info.type = a.type()->annotation_str();
    info.has_default = a.default_value().has_value();
    if (info.has_default) {
      std::ostringstream d;
      d << *a.default_value();
      info.default_value = d.str();
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<TensorView> TensorViewsOf(const std::vector<ArgValue>& args) {
  std::vector<TensorView> out;
  for (const ArgValue& a : args) CollectViews(a, &out);
  return out;
}

}  // namespace torchnode
