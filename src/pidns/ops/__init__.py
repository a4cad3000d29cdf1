"""Operations: spawn/Sandbox, init, exec, containers, translate, discovery."""
