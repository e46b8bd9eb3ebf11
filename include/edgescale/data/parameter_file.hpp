// edgescale/data/parameter_file.hpp — whole-network parameter files: one .npy per tensor.
//
// A parameter file is a directory holding
//     DIR/<qualified name>.npy      e.g. DIR/0.weight.npy, DIR/0.bias.npy, DIR/1.running_mean.npy
// with Parameter::value in Parameter::shape, in the network's scalar type (data/npy.hpp writes and
// reads each file). The qualified names are the keys of a PyTorch nn.Sequential state_dict, so
//     net.load_state_dict({k: torch.from_numpy(np.load(f"{DIR}/{k}.npy")) for k in keys})
// moves the weights into PyTorch and np.save(f"{DIR}/{k}.npy", v.numpy()) moves them back.
// A pruned tensor's mask is saved beside it as DIR/<qualified name>_mask.npy (0/1 in the tensor's
// shape and scalar type): the state_dict key torch.nn.utils.prune gives the mask buffer
// ("0.weight_mask"), so a module pruned with torch.nn.utils.prune.custom_from_mask takes the pair
// (the values as its weight_orig). Loading restores exactly what was saved: the mask where its file
// is, no mask where it is not. Gradients are not saved. Any NamedTensors (core/concepts.hpp)
// saves and loads: a user's own network type too.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/detail/stream.hpp>
#include <edgescale/data/npy.hpp>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace edgescale::data {

namespace detail {

/// The file of a tensor: DIR/<qualified name>.npy. Rejects a name that would leave DIR.
inline std::filesystem::path tensor_file(const std::filesystem::path& dir,
                                         std::string_view qualified_name) {
  if (qualified_name.empty() || qualified_name == "." || qualified_name == ".." ||
      qualified_name.find_first_of(std::string_view("/\\\0", 3)) != std::string_view::npos) {
    throw argument_error(
        "tensor name " + quote_name(qualified_name) +
        " cannot be a file name (empty, '.', '..' or containing a path separator)");
  }
  return dir / (std::string(qualified_name) + ".npy");
}

}  // namespace detail

namespace detail {

// The bodies of save_parameters and load_parameters for one tensor: templates on the scalar type
// only, so each network type adds just its visit, not another copy of the file handling.

/// Saves one tensor to DIR/<qualified name>.npy; `seen` holds the names saved so far.
template <class T>
void save_tensor(const std::filesystem::path& dir, std::string_view qualified_name,
                 const Parameter<T>& tensor, std::vector<std::string>& seen) {
  const std::filesystem::path file = tensor_file(dir, qualified_name);
  for (const std::string& name : seen) {
    if (name == qualified_name) {
      throw argument_error("tensor name " + quote_name(qualified_name) +
                           " appears twice in the network");
    }
  }
  seen.emplace_back(qualified_name);
  if (shape_size(tensor.shape) != tensor.value.size()) {
    throw shape_error("tensor " + quote_name(qualified_name) + " has " +
                      std::to_string(tensor.value.size()) + " values but shape " +
                      npy_shape_repr(tensor.shape));
  }
  save_npy(file, tensor.value.data(), std::span<const Index>(tensor.shape));
  const std::filesystem::path mask_file = tensor_file(dir, std::string(qualified_name) + "_mask");
  if (tensor.masked()) {
    if (tensor.mask.size() != tensor.value.size()) {
      throw shape_error("tensor " + quote_name(qualified_name) + " has " +
                        std::to_string(tensor.mask.size()) + " mask entries for " +
                        std::to_string(tensor.value.size()) + " values");
    }
    save_npy(mask_file, tensor.mask.data(), std::span<const Index>(tensor.shape));
  } else {
    // A mask file left by an earlier save of this directory would come back on loading.
    std::error_code ec;
    std::filesystem::remove(mask_file, ec);
    if (ec) {
      throw error("cannot remove the stale mask file " + quote_name(mask_file.string()) + ": " +
                  ec.message());
    }
  }
}

/// Reads DIR/<qualified name>.npy as T and checks its shape against `shape`; the errors name the
/// tensor.
template <class T>
std::vector<T> load_tensor(const std::filesystem::path& dir, std::string_view qualified_name,
                           const std::vector<Index>& shape) {
  const std::filesystem::path file = tensor_file(dir, qualified_name);
  const std::string prefix = "tensor " + quote_name(qualified_name) + ": ";
  NpyArray<T> stored;
  try {
    stored = load_npy<T>(file);
  } catch (const format_error& e) {
    throw format_error(prefix + e.what());
  } catch (const error& e) {
    throw error(prefix + e.what());
  }
  if (stored.shape != shape) {
    throw shape_error(prefix + "file " + quote_name(file.string()) + " has shape " +
                      npy_shape_repr(stored.shape) + " but the network expects " +
                      npy_shape_repr(shape));
  }
  return std::move(stored.data);
}

}  // namespace detail

/// Saves every tensor's values to DIR/<qualified name>.npy (creating DIR; see the top of this
/// file). Throws argument_error for a name that is not a file name or appears twice, shape_error
/// for a tensor whose value count does not match its shape, edgescale::error if a file cannot be
/// written.
template <NamedTensors Net>
void save_parameters(const Net& net, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw error("cannot create parameter directory " + detail::quote_name(dir.string()) + ": " +
                ec.message());
  }
  std::vector<std::string> seen;
  for_each_tensor(net, [&](std::string_view qualified_name, const auto& tensor) {
    detail::save_tensor(dir, qualified_name, tensor, seen);
  });
}

/// Loads every tensor's values from DIR/<qualified name>.npy. All files are read and checked
/// before any tensor is assigned, so on any error the network is left unchanged. Throws
/// shape_error naming the tensor and the file when a stored shape differs from the tensor's,
/// format_error for a corrupt file (or a mask entry other than 0 and 1) and edgescale::error for
/// a missing one. Each tensor gets the mask of its DIR/<name>_mask.npy, or none without one (its
/// masked values are zeroed); files that match no tensor are ignored; gradients are left as they
/// are.
template <NamedTensors Net>
void load_parameters(Net& net, const std::filesystem::path& dir) {
  // Pass 1 reads and checks every file; pass 2 assigns, visiting the tensors in the same order.
  using Scalar = typename Net::scalar_type;
  std::vector<std::vector<Scalar>> loaded;
  std::vector<std::vector<Scalar>> masks;  // empty: no mask file
  for_each_tensor(net, [&](std::string_view qualified_name, const auto& tensor) {
    loaded.push_back(detail::load_tensor<Scalar>(dir, qualified_name, tensor.shape));
    const std::string mask_name = std::string(qualified_name) + "_mask";
    masks.emplace_back();
    if (std::filesystem::exists(detail::tensor_file(dir, mask_name))) {
      masks.back() = detail::load_tensor<Scalar>(dir, mask_name, tensor.shape);
      for (const Scalar m : masks.back()) {
        if (m != Scalar(0) && m != Scalar(1)) {
          throw format_error("tensor " + detail::quote_name(mask_name) +
                             ": mask entries must be 0 or 1, found " + std::to_string(m));
        }
      }
    }
  });
  std::size_t i = 0;
  for_each_tensor(net, [&](std::string_view, auto& tensor) {
    const std::vector<Scalar>& values = loaded[i];
    const std::vector<Scalar>& mask = masks[i];
    ++i;
    tensor.value =
        Eigen::Map<const Vector<Scalar>>(values.data(), static_cast<Index>(values.size()));
    tensor.mask = Eigen::Map<const Vector<Scalar>>(mask.data(), static_cast<Index>(mask.size()));
    tensor.apply_mask();
  });
}

}  // namespace edgescale::data
