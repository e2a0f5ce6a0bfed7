print("apf-bench: benchmarks are added with their issues")
