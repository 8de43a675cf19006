# The Python module `adcorre` (python/adcorre_module.cpp, pybind11): built
# into <build>/python, installed into ${ADCORRE_PYTHON_DIR} under the prefix.
# It is for the system Python (Debian's python3, where python3-numpy and
# python3-pytest are), whatever python3 comes first on PATH.
# Included from the top-level CMakeLists.txt after adcorre_lib exists.
set(Python_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "the Python the adcorre module is built for")
set(PYBIND11_FINDPYTHON ON)
find_package(pybind11 CONFIG QUIET)
option(ADCORRE_PYTHON "Build the Python module (needs pybind11-dev, python3-dev)" ${pybind11_FOUND})
if(NOT ADCORRE_PYTHON)
  return()
endif()
if(NOT pybind11_FOUND)
  message(FATAL_ERROR "ADCORRE_PYTHON is ON but pybind11 was not found (Debian: apt-get install pybind11-dev python3-dev)")
endif()

pybind11_add_module(adcorre_python MODULE ${CMAKE_SOURCE_DIR}/python/adcorre_module.cpp)
target_link_libraries(adcorre_python PRIVATE adcorre_lib)
set_target_properties(adcorre_python PROPERTIES OUTPUT_NAME adcorre
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/python)

set(ADCORRE_PYTHON_DIR lib/python3/dist-packages CACHE STRING "where the Python module is installed, under the prefix")
if(ADCORRE_INSTALL)
  file(RELATIVE_PATH _adcorre_py_to_lib /${ADCORRE_PYTHON_DIR} /${CMAKE_INSTALL_LIBDIR})
  set_target_properties(adcorre_python PROPERTIES INSTALL_RPATH "$ORIGIN/${_adcorre_py_to_lib}")
  install(TARGETS adcorre_python LIBRARY DESTINATION ${ADCORRE_PYTHON_DIR})
endif()

if(ADCORRE_BUILD_TESTS)
  add_test(NAME test-python-module
           COMMAND ${Python_EXECUTABLE} -m pytest -q -p no:cacheprovider ${CMAKE_SOURCE_DIR}/tests/python/test_adcorre_module.py
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test-python-module PROPERTIES TIMEOUT 600
                       ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;ADCORRE_BINARY=$<TARGET_FILE:adcorre>;PYTHONDONTWRITEBYTECODE=1${ADCORRE_SANITIZER_PRELOAD}")
endif()
