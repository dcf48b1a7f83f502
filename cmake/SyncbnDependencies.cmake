# Imported targets for the libraries that ship no CMake package on Debian (or one we cannot use):
# OpenBLAS, oneDNN and NCCL. Included by the build and by the installed syncbnConfig.cmake, so
# the exported targets name SyncbnDeps::* and never an absolute path: each machine finds its own.
#   syncbn_find_openblas()   SyncbnDeps::openblas (pkg-config openblas, else FindBLAS)
#   syncbn_find_dnnl()       SyncbnDeps::dnnl when libdnnl is found; sets SYNCBN_DNNL_FOUND
#   syncbn_find_nccl()       SyncbnDeps::nccl and CUDA::cudart; sets SYNCBN_NCCL_FOUND
#   syncbn_find_image_codecs() SyncbnDeps::png and SyncbnDeps::jpeg (pkg-config)

function(syncbn_imported_library name library include_dir)
  if(TARGET SyncbnDeps::${name})
    return()
  endif()
  add_library(SyncbnDeps::${name} UNKNOWN IMPORTED)
  set_target_properties(SyncbnDeps::${name} PROPERTIES IMPORTED_LOCATION "${library}")
  if(include_dir)
    set_target_properties(SyncbnDeps::${name} PROPERTIES
                          INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${include_dir}"
                          INTERFACE_INCLUDE_DIRECTORIES "${include_dir}")
  endif()
endfunction()

# Debian's OpenBLAS (its cblas.h declares openblas_set_num_threads).
function(syncbn_find_openblas)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(SYNCBN_OPENBLAS QUIET openblas)
  endif()
  if(SYNCBN_OPENBLAS_FOUND)
    find_library(SYNCBN_OPENBLAS_LIBRARY openblas HINTS ${SYNCBN_OPENBLAS_LIBRARY_DIRS})
    set(include_dir ${SYNCBN_OPENBLAS_INCLUDE_DIRS})
  else()
    find_library(SYNCBN_OPENBLAS_LIBRARY openblas REQUIRED)
    find_path(include_dir cblas.h PATH_SUFFIXES openblas openblas-pthread REQUIRED)
  endif()
  syncbn_imported_library(openblas "${SYNCBN_OPENBLAS_LIBRARY}" "${include_dir}")
endfunction()

# oneDNN by path rather than find_package(dnnl): Debian's dnnl-config.cmake requires OpenCL (the
# package is built with the OpenCL GPU runtime), which syncbn does not need.
function(syncbn_find_dnnl)
  find_path(SYNCBN_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(SYNCBN_DNNL_LIBRARY dnnl)
  if(SYNCBN_DNNL_INCLUDE_DIR AND SYNCBN_DNNL_LIBRARY)
    syncbn_imported_library(dnnl "${SYNCBN_DNNL_LIBRARY}" "${SYNCBN_DNNL_INCLUDE_DIR}")
    set(SYNCBN_DNNL_FOUND TRUE PARENT_SCOPE)
  else()
    set(SYNCBN_DNNL_FOUND FALSE PARENT_SCOPE)
  endif()
endfunction()

function(syncbn_find_nccl)
  if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(CUDAToolkit_FOUND AND TARGET CUDA::cudart AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    syncbn_imported_library(nccl "${NCCL_LIBRARY}" "${NCCL_INCLUDE_DIR}")
    set(SYNCBN_NCCL_FOUND TRUE PARENT_SCOPE)
  else()
    set(SYNCBN_NCCL_FOUND FALSE PARENT_SCOPE)
  endif()
  set(CUDAToolkit_FOUND ${CUDAToolkit_FOUND} PARENT_SCOPE)
  set(CUDAToolkit_VERSION ${CUDAToolkit_VERSION} PARENT_SCOPE)
  set(CUDAToolkit_INCLUDE_DIRS ${CUDAToolkit_INCLUDE_DIRS} PARENT_SCOPE)
endfunction()

# libpng and libjpeg for the image_folder data set (Debian: libpng-dev, libjpeg62-turbo-dev), by
# pkg-config: SyncbnDeps::png and SyncbnDeps::jpeg.
function(syncbn_find_image_codecs)
  find_package(PkgConfig REQUIRED)
  foreach(codec png jpeg)
    string(TOUPPER ${codec} upper)
    pkg_check_modules(SYNCBN_${upper} REQUIRED lib${codec})
    find_library(SYNCBN_${upper}_LIBRARY ${codec} HINTS ${SYNCBN_${upper}_LIBRARY_DIRS} REQUIRED)
    set(include_dir "${SYNCBN_${upper}_INCLUDE_DIRS}")  # empty for /usr/include
    syncbn_imported_library(${codec} "${SYNCBN_${upper}_LIBRARY}" "${include_dir}")
  endforeach()
endfunction()
