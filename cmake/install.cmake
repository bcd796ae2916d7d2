# Installation: the C API header, libtiercache.so (versioned, with its
# SONAME), a CMake package (find_package(tiercache) -> tiercache::tiercache)
# and a pkg-config file. `cmake --install build --prefix /opt/tiercache`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS tiercache EXPORT tiercacheTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tiercache DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(EXPORT tiercacheTargets NAMESPACE tiercache::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tiercache)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tiercacheConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tiercacheConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tiercache)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tiercacheConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tiercacheConfig.cmake ${PROJECT_BINARY_DIR}/tiercacheConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tiercache)
# pkg-config: the prefix is the one given at install time.
install(CODE "
  set(CMAKE_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_DESCRIPTION \"${PROJECT_DESCRIPTION}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/tiercache.pc.in\"
                 \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/tiercache.pc\" @ONLY)
")
