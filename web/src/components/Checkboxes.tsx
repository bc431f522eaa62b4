/** A fieldset of checkboxes choosing any of `values`; `error` marks it invalid and names the
 * message that says why (shown by the caller, with the id `${id}-error`). */
export function Checkboxes<T extends string>(props: {
  id?: string;
  legend: string;
  values: readonly T[];
  chosen: T[];
  label: (value: T) => string;
  onChange: (chosen: T[]) => void;
  error?: string;
}) {
  const invalid = props.error && props.id
    ? { "aria-invalid": "true" as const, "aria-describedby": `${props.id}-error` }
    : {};
  return (
    <fieldset class="choices" id={props.id} {...invalid}>
      <legend>{props.legend}</legend>
      {props.values.map((value) => (
        <label key={value}>
          <input
            type="checkbox"
            checked={props.chosen.includes(value)}
            onChange={(event) =>
              props.onChange(
                event.currentTarget.checked
                  ? [...props.chosen, value]
                  : props.chosen.filter((item) => item !== value),
              )
            }
          />{" "}
          {props.label(value)}
        </label>
      ))}
    </fieldset>
  );
}
