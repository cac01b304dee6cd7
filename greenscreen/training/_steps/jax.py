"""JAX: Keras's stateless `train_step(state, data)` around the shared stateful method step.

The method step is written once, statefully (`variable.assign`,
`optimizer.apply`), as on TensorFlow. Here it runs inside a
`keras.StatelessScope` that maps every variable of the model, the optimizer and
the metrics to its value in the JAX state, so each assignment becomes a new
value in the scope, and the new state is read back from the scope at the end.
Only the gradient is JAX-specific: `jax.grad` over the values of the requested
variables, with every other variable fixed at its current value in the scope.
"""

from __future__ import annotations

import jax
from keras import StatelessScope
from keras.src.backend.common.stateless_scope import get_stateless_scope


def _state_variables(model) -> tuple:
    return (model.trainable_variables, model.non_trainable_variables,
            model.optimizer.variables, model.metrics_variables)


def train_step(model, state, data):
    groups = _state_variables(model)
    mapping = [(ref, value) for refs, values in zip(groups, state)
               for ref, value in zip(refs, values)]
    with StatelessScope(state_mapping=mapping) as scope:
        logs = model.method_step(data)
    new_state = tuple([scope.get_current_value(ref) for ref in refs] for refs in groups)
    return logs, new_state


def _current(scope, variable):
    value = scope.get_current_value(variable) if scope is not None else None
    return variable.value if value is None else value


def gradients(model, x, y, sample_weight, variables):
    outer = get_stateless_scope()
    wanted = {id(v) for v in variables}
    fixed = [(v, _current(outer, v)) for group in _state_variables(model) for v in group
             if id(v) not in wanted]
    # BatchNorm statistics, seed states, and the metrics: compute_loss updates each
    # output's loss tracker (left out, every per-output loss was logged as 0.0)
    updated = model.non_trainable_variables + model.metrics_variables

    def scaled_loss(values):
        with StatelessScope(state_mapping=fixed + list(zip(variables, values)),
                            collect_losses=True) as inner:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                      training=True)
            scaled = model.optimizer.scale_loss(loss)
        return scaled, (y_pred, loss, [inner.get_current_value(v) for v in updated])

    values = [_current(outer, v) for v in variables]
    grads, (y_pred, loss, new_values) = jax.grad(scaled_loss, has_aux=True)(values)
    for variable, value in zip(updated, new_values):
        variable.assign(value)  # recorded in the outer scope
    return grads, y_pred, loss
