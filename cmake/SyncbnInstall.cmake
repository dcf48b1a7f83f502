# Installs the libraries (one per area, plus the syncbn::syncbn umbrella), the public headers and
# an exported package, so another CMake project can find_package(syncbn) and link only the areas
# it uses: syncbn::nn for BatchNorm alone, syncbn::environment for dist::Environment, ...
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(syncbn_areas GLOBAL PROPERTY SYNCBN_AREAS)
install(TARGETS ${syncbn_areas} syncbn EXPORT syncbnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/syncbn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT syncbnTargets NAMESPACE syncbn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/syncbn)
configure_package_config_file(cmake/syncbnConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/syncbnConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/syncbn)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/syncbnConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/syncbnConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/syncbnConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/SyncbnDependencies.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/syncbn)
