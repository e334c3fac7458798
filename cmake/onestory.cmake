# onestory_cc_library(NAME name SRCS ... HDRS ... DEPS ...)
#
# One library per folder under libs/: target `onestory_<name>`, alias `onestory::<name>`. Headers
# are included by their path from the repository root ("libs/redis/client.h").
function(onestory_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  set(target onestory_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
  endif()
  add_library(onestory::${ARG_NAME} ALIAS ${target})
endfunction()

# onestory_cc_test(NAME name SRCS ... DEPS ... [LABELS ...] [CLUSTER <gtest filter>])
#
# A GoogleTest binary registered with CTest.
#
# CLUSTER <gtest filter> registers the binary a second time, as <NAME>_cluster, on a local Redis
# Cluster (ONESTORY_TEST_REDIS=cluster: tests/testing/redis_for_test.h), running the tests the
# filter selects ("*" for all).
function(onestory_cc_test)
  cmake_parse_arguments(ARG "" "NAME;CLUSTER" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  if(ARG_LABELS)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
  if(ARG_CLUSTER)
    add_test(NAME ${ARG_NAME}_cluster COMMAND ${ARG_NAME} --gtest_filter=${ARG_CLUSTER})
    set_tests_properties(${ARG_NAME}_cluster PROPERTIES
      ENVIRONMENT ONESTORY_TEST_REDIS=cluster LABELS "${ARG_LABELS};cluster")
  endif()
endfunction()
