# Run by `cmake --install`: writes peepool.pc with the prefix given at
# install time (`--prefix P`, else CMAKE_INSTALL_PREFIX), under DESTDIR.
# Set by the install(CODE) that includes it: PEEPOOL_PC_IN,
# PEEPOOL_LIBDIR, PEEPOOL_INCLUDEDIR (GNUInstallDirs values, relative or
# absolute), PROJECT_VERSION, PEEPOOL_DESCRIPTION.
set(PEEPOOL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${PEEPOOL_${_kind}}")
    set(PEEPOOL_PC_${_kind} "${PEEPOOL_${_kind}}")
  else()
    set(PEEPOOL_PC_${_kind} "\${prefix}/${PEEPOOL_${_kind}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${PEEPOOL_LIBDIR}")
  set(_pc "${PEEPOOL_LIBDIR}/pkgconfig/peepool.pc")
else()
  set(_pc "${CMAKE_INSTALL_PREFIX}/${PEEPOOL_LIBDIR}/pkgconfig/peepool.pc")
endif()
message(STATUS "Installing: $ENV{DESTDIR}${_pc}")
configure_file("${PEEPOOL_PC_IN}" "$ENV{DESTDIR}${_pc}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_pc}")  # without DESTDIR, as CMake lists its own
