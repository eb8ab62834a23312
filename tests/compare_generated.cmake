# Runs GENERATOR and fails unless its output equals the file EXPECTED.
execute_process(COMMAND ${GENERATOR} OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${GENERATOR} failed: ${rc}")
endif()
file(READ ${EXPECTED} expected)
if(NOT generated STREQUAL expected)
  message(FATAL_ERROR "${EXPECTED} is out of date: run ${GENERATOR} > ${EXPECTED}")
endif()
