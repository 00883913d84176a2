import LogSimKit
print("\(LogSim.name): not built yet")
