# Install rules: `cmake --install build --prefix P` lays out
#   P/bin/adcorre, P/bin/adcorre-cli      the CLI's launcher and the CLI
#   P/<libdir>/libadcorre.so (or .a)      the engine
#   P/include/adcorre/...                 the public headers
#   P/share/adcorre/models/*.pt           the shipped models (the CLI's and the API's default)
#   P/<libdir>/cmake/adcorre/             find_package(adcorre) -> adcorre::adcorre
#   P/<libdir>/pkgconfig/adcorre.pc       pkg-config --cflags --libs adcorre
# Included from the top-level CMakeLists.txt after the targets exist.
include(CMakePackageConfigHelpers)

set(ADCORRE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/adcorre)

# The installed CLI (and a consumer linking the static archive) finds
# libadcorre next to itself, wherever the prefix is moved.
file(RELATIVE_PATH _adcorre_bin_to_lib /${CMAKE_INSTALL_BINDIR} /${CMAKE_INSTALL_LIBDIR})
set_target_properties(adcorre_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${_adcorre_bin_to_lib}")

install(TARGETS adcorre_lib EXPORT adcorreTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS adcorre adcorre_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # the launcher and the CLI, side by side
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/adcorre DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/adcorre/models
        FILES_MATCHING PATTERN "*.pt" PATTERN "*.md")

install(EXPORT adcorreTargets NAMESPACE adcorre:: DESTINATION ${ADCORRE_CMAKE_DIR})
# What adcorreConfig.cmake must find again for the targets it imports: the
# optional libraries only when this build linked them.
foreach(dep CPPHTTPLIB dlib)
  if(${dep}_FOUND)
    set(ADCORRE_WITH_${dep} ON)
  else()
    set(ADCORRE_WITH_${dep} OFF)
  endif()
endforeach()
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/adcorreConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/adcorreConfig.cmake
                              INSTALL_DESTINATION ${ADCORRE_CMAKE_DIR} PATH_VARS CMAKE_INSTALL_DATADIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/adcorreConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/adcorreConfig.cmake ${CMAKE_BINARY_DIR}/adcorreConfigVersion.cmake
        DESTINATION ${ADCORRE_CMAKE_DIR})

# pkg-config: LibTorch ships no .pc file, so its flags are written out here.
string(REPLACE ";" " -I" ADCORRE_PC_TORCH_CFLAGS "-I${TORCH_INCLUDE_DIRS}")
string(APPEND ADCORRE_PC_TORCH_CFLAGS " ${TORCH_CXX_FLAGS}")
get_filename_component(ADCORRE_PC_TORCH_LIBDIR "${TORCH_LIBRARY}" DIRECTORY)
if(ADCORRE_SHARED)
  set(ADCORRE_PC_LIBS_PRIVATE "-L${ADCORRE_PC_TORCH_LIBDIR} -ltorch -ltorch_cpu -lc10 -lpthread")
else()
  set(ADCORRE_PC_LIBS_PRIVATE "")  # a static archive needs its dependencies on every link line
  set(ADCORRE_PC_LIBS_STATIC "-L${ADCORRE_PC_TORCH_LIBDIR} -ltorch -ltorch_cpu -lc10 -lpthread ${CMAKE_DL_LIBS}")
endif()
# Relocatable: the prefix is found from the .pc file's own folder, so the
# file is right for whatever `cmake --install --prefix` says.
file(RELATIVE_PATH ADCORRE_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" ADCORRE_PC_TO_PREFIX "${ADCORRE_PC_TO_PREFIX}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/adcorre.pc.in ${CMAKE_BINARY_DIR}/adcorre.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/adcorre.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
