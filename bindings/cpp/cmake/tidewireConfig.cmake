# CMake package of tidewire, installed by `make install PREFIX=...` into
# PREFIX/lib/cmake/tidewire/. Relocatable: every path is found from this file's place.
#
#   find_package(tidewire CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE tidewire::tidewire)
#
# Targets:
#   tidewire::tidewire         libtidewire.so, tidewire.h and tidewire.hpp
#   tidewire::tidewire_static  libtidewire.a (and the system libraries it needs), same headers
#   tidewire::cpp              tidewire::tidewire plus the C++17 requirement of tidewire.hpp

include(CMakeFindDependencyMacro)
find_dependency(Threads)

get_filename_component(_tidewire_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET tidewire::tidewire)
  add_library(tidewire::tidewire SHARED IMPORTED)
  set_target_properties(tidewire::tidewire PROPERTIES
    IMPORTED_LOCATION "${_tidewire_prefix}/lib/libtidewire.so.0"
    IMPORTED_SONAME "libtidewire.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_tidewire_prefix}/include")

  add_library(tidewire::tidewire_static STATIC IMPORTED)
  set_target_properties(tidewire::tidewire_static PROPERTIES
    IMPORTED_LOCATION "${_tidewire_prefix}/lib/libtidewire.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_tidewire_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m;rt;util")

  add_library(tidewire::cpp INTERFACE IMPORTED)
  set_target_properties(tidewire::cpp PROPERTIES
    INTERFACE_LINK_LIBRARIES "tidewire::tidewire"
    INTERFACE_COMPILE_FEATURES "cxx_std_17")
endif()

foreach(_tidewire_file IN ITEMS lib/libtidewire.so.0 lib/libtidewire.a include/tidewire.h include/tidewire.hpp)
  if(NOT EXISTS "${_tidewire_prefix}/${_tidewire_file}")
    set(tidewire_FOUND FALSE)
    set(tidewire_NOT_FOUND_MESSAGE "${_tidewire_prefix}/${_tidewire_file} is missing (run make install again)")
  endif()
endforeach()
unset(_tidewire_file)
unset(_tidewire_prefix)
