# sagaflow_library(<name> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
#
# Declares the library target sagaflow_<name> for the folder <name>/. Its public headers are
# included as "<name>/header.hpp". The include root is a per-target folder in the build tree
# holding one link to <name>/, so a target can include another folder's headers only if it
# links that folder's library: the dependency direction of STYLE.md is enforced by CMake.
set(SAGAFLOW_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Wnull-dereference -Wimplicit-fallthrough)

function(sagaflow_compile_options target)
  target_compile_options(${target} PRIVATE ${SAGAFLOW_WARNINGS})
  if(SAGAFLOW_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

function(sagaflow_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target sagaflow_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(sagaflow::${name} ALIAS ${target})
  set(inc ${CMAKE_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${inc})
  if(NOT EXISTS ${inc}/${name})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${inc}/${name} SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${inc}>)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  sagaflow_compile_options(${target})
endfunction()
