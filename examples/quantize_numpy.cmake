# ctest: the integer model `quantize --save` writes is recomputed in numpy from its .npy files
# alone (scripts/quant_numpy.py) and must give the codes `infer` gives, every one of them.
# The float network is the untrained initialisation (--epochs 0): the arithmetic, not the
# accuracy, is under test. -DQUANTIZE, -DINFER, -DPYTHON, -DSCRIPT, -DNET, -DBITS, -DWORK.
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
execute_process(
  COMMAND "${QUANTIZE}" --net ${NET} --mode ptq --bits ${BITS} --observer mse --epochs 0
    --calibration-batches 4 --test-samples 300 --save "${WORK}/model" --out "${WORK}/r.json"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "quantize failed (${rc})")
endif()
execute_process(
  COMMAND "${PYTHON}" "${SCRIPT}" --model "${WORK}/model" --infer "${INFER}" --samples 300
    --work "${WORK}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "numpy and infer disagree, or the check failed (${rc})")
endif()
